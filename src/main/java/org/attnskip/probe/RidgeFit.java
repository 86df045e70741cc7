package org.attnskip.probe;

import org.apache.commons.math3.linear.Array2DRowRealMatrix;
import org.apache.commons.math3.linear.CholeskyDecomposition;
import org.apache.commons.math3.linear.NonPositiveDefiniteMatrixException;
import org.apache.commons.math3.linear.RealMatrix;
import org.apache.commons.math3.linear.SingularValueDecomposition;
import org.attnskip.onnx.BadInputException;
import org.attnskip.reference.AffineMap;

/**
 * Fits y = x . M + b over many (x, y) rows by ridge regression with an unpenalised bias,
 * accumulating sums in double precision so that the rows need not be kept.
 *
 * <p>What "ridge r" means: with the centred input scatter C = sum_t (x_t - mean x)(x_t - mean x)^T and
 * lambda = r * trace(C) / dim (r times the mean eigenvalue of C), M solves (C + lambda I) M =
 * sum_t (x_t - mean x)(y_t - mean y)^T and b = mean y - mean x . M. This minimises
 * sum_t |y_t - x_t . M - b|^2 + lambda |M|_F^2; r = 0.01 is the "1% ridge".
 */
public final class RidgeFit {
    /** Rows gathered before they are added to the sums: one pass over the dim x dim sums per block, not per row. */
    private static final int BLOCK = 128;
    private final int in;
    private final int out;
    private final double[][] xx;
    private final double[][] xy;
    private final double[] sumX;
    private final double[] sumY;
    private long rows;
    /** The pending block, transposed: xt[i][r] is input i of pending row r. */
    private final double[][] xt;
    private final double[][] yt;
    private int pending;

    public RidgeFit(int in, int out) {
        this.in = in;
        this.out = out;
        this.xx = new double[in][in];
        this.xy = new double[in][out];
        this.sumX = new double[in];
        this.sumY = new double[out];
        this.xt = new double[in][BLOCK];
        this.yt = new double[out][BLOCK];
    }

    /** Adds one observation. */
    public void add(float[] x, float[] y) {
        if (x.length != in || y.length != out) {
            throw new IllegalArgumentException("row of " + x.length + " -> " + y.length + ", the fit is " + in + " -> " + out);
        }
        rows++;
        for (int i = 0; i < in; i++) {
            xt[i][pending] = x[i];
            sumX[i] += x[i];
        }
        for (int j = 0; j < out; j++) {
            yt[j][pending] = y[j];
            sumY[j] += y[j];
        }
        if (++pending == BLOCK) {
            flush();
        }
    }

    public long rows() {
        return rows;
    }

    /** Adds the pending rows to X^T X (upper triangle; mirrored in solve()) and X^T Y, rows of the sums in parallel. */
    private void flush() {
        int n = pending;
        java.util.stream.IntStream.range(0, in).parallel().forEach(i -> {
            double[] a = xt[i];
            double[] xxRow = xx[i];
            for (int j = i; j < in; j++) {
                xxRow[j] += dot(a, xt[j], n);
            }
            double[] xyRow = xy[i];
            for (int j = 0; j < out; j++) {
                xyRow[j] += dot(a, yt[j], n);
            }
        });
        pending = 0;
    }

    private static double dot(double[] a, double[] b, int n) {
        double s0 = 0;
        double s1 = 0;
        int r = 0;
        for (; r + 1 < n; r += 2) { // two sums: the additions need not wait for each other
            s0 += a[r] * b[r];
            s1 += a[r + 1] * b[r + 1];
        }
        if (r < n) {
            s0 += a[r] * b[r];
        }
        return s0 + s1;
    }

    /** The fitted map; with rank R in 1..dim-1, M truncated to its R largest singular values; 0 for full rank. */
    public AffineMap solve(double ridge, int rank) {
        if (in != out) {
            throw new IllegalStateException("an AffineMap maps dim to dim; this fit is " + in + " -> " + out);
        }
        if (rank >= in) {
            throw new BadInputException("--rank " + rank + " must be below the hidden size " + in);
        }
        double[][] m = solveMatrix(ridge);
        if (rank <= 0) {
            return new AffineMap(in, flatten(m), null, bias(m));
        }
        // M ~ U_R S_R V_R^T = (U_R S_R) V_R^T: x . M runs as two thin MatMuls, dim x R then R x dim.
        SingularValueDecomposition svd = new SingularValueDecomposition(new Array2DRowRealMatrix(m, false));
        double[][] first = svd.getU().getSubMatrix(0, in - 1, 0, rank - 1).getData();
        double[] s = svd.getSingularValues();
        for (double[] row : first) {
            for (int r = 0; r < rank; r++) {
                row[r] *= s[r];
            }
        }
        RealMatrix second = svd.getVT().getSubMatrix(0, rank - 1, 0, out - 1);
        // the bias that centres the truncated map's residual
        double[][] truncated = new Array2DRowRealMatrix(first, false).multiply(second).getData();
        return new AffineMap(in, flatten(first), flatten(second.getData()), bias(truncated));
    }

    /** b = mean y - mean x . M: the best bias for a given M. */
    private float[] bias(double[][] m) {
        float[] b = new float[out];
        for (int j = 0; j < out; j++) {
            double v = sumY[j] / rows;
            for (int i = 0; i < in; i++) {
                v -= sumX[i] / rows * m[i][j];
            }
            b[j] = (float) v;
        }
        return b;
    }

    /** M of the documented ridge problem, [in][out]. */
    double[][] solveMatrix(double ridge) {
        flush();
        if (rows < 2) {
            throw new BadInputException("calibration needs at least 2 tokens; it got " + rows);
        }
        if (!(ridge >= 0)) {
            throw new BadInputException("ridge " + ridge + " must be 0 or more");
        }
        double n = rows;
        double[][] c = new double[in][in];
        double trace = 0;
        for (int i = 0; i < in; i++) {
            for (int j = i; j < in; j++) {
                double v = xx[i][j] - sumX[i] * sumX[j] / n;
                c[i][j] = v;
                c[j][i] = v;
            }
            trace += c[i][i];
        }
        double lambda = ridge * trace / in;
        for (int i = 0; i < in; i++) {
            c[i][i] += lambda;
        }
        double[][] cxy = new double[in][out];
        for (int i = 0; i < in; i++) {
            for (int j = 0; j < out; j++) {
                cxy[i][j] = xy[i][j] - sumX[i] * sumY[j] / n;
            }
        }
        try {
            CholeskyDecomposition chol = new CholeskyDecomposition(new Array2DRowRealMatrix(c, false), 1e-12, 1e-14);
            return chol.getSolver().solve(new Array2DRowRealMatrix(cxy, false)).getData();
        } catch (NonPositiveDefiniteMatrixException e) {
            throw new BadInputException("the calibration inputs do not determine the map (singular scatter matrix):"
                    + " use more calibration tokens or a larger --ridge");
        }
    }

    private static float[] flatten(double[][] m) {
        int cols = m[0].length;
        float[] f = new float[m.length * cols];
        for (int i = 0; i < m.length; i++) {
            for (int j = 0; j < cols; j++) {
                f[i * cols + j] = (float) m[i][j];
            }
        }
        return f;
    }
}
