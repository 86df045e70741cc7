package org.attnskip.probe;

/** The dense per-vector operations {@link OutputRefinement}'s network and its gradient are built from, in double. */
final class DenseMath {
    private DenseMath() {
    }

    static double[] scaled(double[] h, float[] weight, double r) {
        double[] out = new double[h.length];
        for (int i = 0; i < h.length; i++) {
            out[i] = weight[i] * h[i] * r;
        }
        return out;
    }

    /** The gradient through y = weight * h * r(h): with g = weight * dy, dh = r g - h r^3 mean(g h). */
    static double[] normBack(double[] h, float[] weight, double r, double[] dy) {
        double dot = 0;
        double[] g = new double[h.length];
        for (int i = 0; i < h.length; i++) {
            g[i] = weight[i] * dy[i];
            dot += g[i] * h[i];
        }
        double c = r * r * r * dot / h.length;
        for (int i = 0; i < h.length; i++) {
            g[i] = r * g[i] - h[i] * c;
        }
        return g;
    }

    /** W . x with W [rows][cols] row-major. */
    static double[] times(float[] weight, double[] x, int rows, int cols) {
        double[] out = new double[rows];
        for (int r = 0; r < rows; r++) {
            double acc = 0;
            int row = r * cols;
            for (int c = 0; c < cols; c++) {
                acc += weight[row + c] * x[c];
            }
            out[r] = acc;
        }
        return out;
    }

    /** W^T . y with W [rows][cols] row-major. */
    static double[] timesTransposed(float[] weight, double[] y, int rows, int cols) {
        double[] out = new double[cols];
        for (int r = 0; r < rows; r++) {
            double yr = y[r];
            int row = r * cols;
            for (int c = 0; c < cols; c++) {
                out[c] += weight[row + c] * yr;
            }
        }
        return out;
    }

    static double sigmoid(double v) {
        return 1.0 / (1.0 + Math.exp(-v));
    }

    static void softmaxInPlace(double[] v) {
        double max = Double.NEGATIVE_INFINITY;
        for (double x : v) {
            max = Math.max(max, x);
        }
        double sum = 0;
        for (int i = 0; i < v.length; i++) {
            v[i] = Math.exp(v[i] - max);
            sum += v[i];
        }
        for (int i = 0; i < v.length; i++) {
            v[i] /= sum;
        }
    }

    static void add(double[] into, double[] from) {
        for (int i = 0; i < into.length; i++) {
            into[i] += from[i];
        }
    }

    static double[] toDouble(float[] f) {
        double[] d = new double[f.length];
        for (int i = 0; i < f.length; i++) {
            d[i] = f[i];
        }
        return d;
    }
}
