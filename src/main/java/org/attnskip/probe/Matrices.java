package org.attnskip.probe;

import org.apache.commons.math3.linear.Array2DRowRealMatrix;
import org.apache.commons.math3.linear.RealMatrix;
import org.apache.commons.math3.linear.SingularValueDecomposition;
import org.attnskip.reference.Vectors;

import java.util.SplittableRandom;

/**
 * The matrix kit of the representation metrics: centring, Gram matrices, eigen decomposition
 * (commons-math3), inverse square roots and the permutations DiME pairs rows with. Rows are
 * samples, columns hidden dimensions; every method is pure.
 */
final class Matrices {
    private Matrices() {
    }

    static double[][] centred(double[][] h) {
        double[] mean = Vectors.meanPool(h);
        double[][] out = new double[h.length][];
        for (int i = 0; i < h.length; i++) {
            out[i] = Vectors.minus(h[i], mean);
        }
        return out;
    }

    /** Each row divided by its L2 norm; a zero row stays zero (it has no direction). */
    static double[][] rowNormalised(double[][] h) {
        double[][] out = new double[h.length][];
        for (int i = 0; i < h.length; i++) {
            out[i] = Vectors.unit(h[i]);
        }
        return out;
    }

    static double[][] gram(double[][] z) {
        int n = z.length;
        double[][] k = new double[n][n];
        for (int i = 0; i < n; i++) {
            for (int j = i; j < n; j++) {
                k[i][j] = Vectors.dot(z[i], z[j]);
                k[j][i] = k[i][j];
            }
        }
        return k;
    }

    static double[] eigenvalues(double[][] psd) {
        return decompose(psd).values();
    }

    static RealMatrix inverseSquareRoot(double[][] spd) {
        Eigen e = decompose(spd);
        RealMatrix v = e.vectors();
        double[] lambda = e.values();
        int d = lambda.length;
        double[][] scaled = new double[d][d];
        for (int i = 0; i < d; i++) {
            for (int k = 0; k < d; k++) {
                scaled[i][k] = v.getEntry(i, k) / Math.sqrt(Math.max(lambda[k], Double.MIN_NORMAL));
            }
        }
        return new Array2DRowRealMatrix(scaled, false).multiply(v.transpose());
    }

    record Eigen(double[] values, RealMatrix vectors) {
    }

    /**
     * Eigenvalues and eigenvectors of a symmetric positive semi-definite matrix (every matrix here
     * is a Gram, scatter or LDA matrix), taken from commons-math3's singular value decomposition:
     * for such a matrix they are its singular values and vectors. Its EigenDecomposition fails to
     * converge on ridge-regularised within-class scatters, whose many equal eigenvalues (the
     * ridge) sit next to a few tiny ones; that happened on stories-deep12's hidden states.
     */
    static Eigen decompose(double[][] psd) {
        SingularValueDecomposition svd = new SingularValueDecomposition(new Array2DRowRealMatrix(psd, false));
        return new Eigen(svd.getSingularValues(), svd.getV());
    }

    static double[][] symmetrised(double[][] m) {
        int d = m.length;
        double[][] s = new double[d][d];
        for (int i = 0; i < d; i++) {
            for (int j = 0; j < d; j++) {
                s[i][j] = 0.5 * (m[i][j] + m[j][i]);
            }
        }
        return s;
    }

    /** K_a o (P K_b P^T) where P maps row i to row order[i]. */
    static double[][] hadamard(double[][] ka, double[][] kb, int[] order) {
        int n = ka.length;
        double[][] out = new double[n][n];
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < n; j++) {
                out[i][j] = ka[i][j] * kb[order[i]][order[j]];
            }
        }
        return out;
    }

    static int[] identity(int n) {
        int[] p = new int[n];
        for (int i = 0; i < n; i++) {
            p[i] = i;
        }
        return p;
    }

    static int[] permutation(int n, SplittableRandom random) {
        int[] p = identity(n);
        for (int i = n - 1; i > 0; i--) {
            int j = random.nextInt(i + 1);
            int t = p[i];
            p[i] = p[j];
            p[j] = t;
        }
        return p;
    }

    static void addOuter(double[][] target, double[] v, double weight) {
        for (int i = 0; i < v.length; i++) {
            for (int j = 0; j < v.length; j++) {
                target[i][j] += weight * v[i] * v[j];
            }
        }
    }
}
