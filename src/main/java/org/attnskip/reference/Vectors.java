package org.attnskip.reference;

import org.apache.commons.math3.util.MathArrays;

/**
 * Vector arithmetic on float and double rows, accumulated in double: what the oracle's noise
 * ({@link NoiseDraw}), the probe's single-layer importance and its representation metrics share.
 * Dot products and norms are hand-written because commons-math3 takes double[] only (a float
 * row would be copied first) and its accurate dot product ({@code MathArrays.linearCombination})
 * rounds differently from the plain running sum the reference is compared with.
 */
public final class Vectors {
    private Vectors() {
    }

    public static double dot(float[] a, float[] b) {
        double sum = 0;
        for (int j = 0; j < a.length; j++) {
            sum += (double) a[j] * b[j];
        }
        return sum;
    }

    public static double dot(double[] a, double[] b) {
        double sum = 0;
        for (int j = 0; j < a.length; j++) {
            sum += a[j] * b[j];
        }
        return sum;
    }

    public static double norm(float[] a) {
        return Math.sqrt(dot(a, a));
    }

    public static double norm(double[] a) {
        return Math.sqrt(dot(a, a));
    }

    /** cos(a, b); 0 when either vector is zero. */
    public static double cosine(float[] a, float[] b) {
        double aa = dot(a, a);
        double bb = dot(b, b);
        return aa == 0 || bb == 0 ? 0 : dot(a, b) / Math.sqrt(aa * bb);
    }

    /** cos(a, b); 0 when either vector is zero. */
    public static double cosine(double[] a, double[] b) {
        double na = norm(a);
        double nb = norm(b);
        return na == 0 || nb == 0 ? 0 : dot(a, b) / (na * nb);
    }

    public static double[] minus(double[] a, double[] b) {
        return MathArrays.ebeSubtract(a, b);
    }

    /** a / |a|; a zero vector stays zero (it has no direction). */
    public static double[] unit(double[] a) {
        double n = norm(a);
        double[] out = new double[a.length];
        if (n > 0) {
            for (int i = 0; i < a.length; i++) {
                out[i] = a[i] / n;
            }
        }
        return out;
    }

    /** The mean of the rows. */
    public static double[] meanPool(double[][] h) {
        double[] m = new double[h[0].length];
        for (double[] row : h) {
            for (int j = 0; j < m.length; j++) {
                m[j] += row[j];
            }
        }
        for (int j = 0; j < m.length; j++) {
            m[j] /= h.length;
        }
        return m;
    }

    /** Float rows as doubles. */
    public static double[][] toDouble(float[][] h) {
        double[][] out = new double[h.length][];
        for (int i = 0; i < h.length; i++) {
            out[i] = new double[h[i].length];
            for (int j = 0; j < h[i].length; j++) {
                out[i][j] = h[i][j];
            }
        }
        return out;
    }
}
