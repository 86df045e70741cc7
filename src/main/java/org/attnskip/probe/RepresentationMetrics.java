package org.attnskip.probe;

import org.apache.commons.math3.linear.Array2DRowRealMatrix;
import org.apache.commons.math3.linear.RealMatrix;
import org.attnskip.reference.Vectors;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * The per-layer representation metrics of Skean et al. ("Does Representation Matter?"), as
 * /work/shared/docs/MANIPULATIONS.md states them, on plain arrays: rows are samples (tokens or
 * prompts), columns are hidden dimensions. Eigenvalues come from commons-math3 (see
 * {@link Matrices#decompose}). Every method is pure and thread-safe.
 */
public final class RepresentationMetrics {
    /** Shannon entropy (the limit of Renyi entropy at alpha = 1). */
    public static final double DEFAULT_ALPHA = 1.0;
    /** The NT-Xent temperature used by Skean et al. */
    public static final double INFO_NCE_TEMPERATURE = 0.1;
    /** LiDAR's ridge on the within-class scatter, relative to its mean eigenvalue. */
    public static final double LIDAR_RIDGE = 1e-4;
    /** How many random re-pairings DiME averages over. */
    public static final int DIME_PERMUTATIONS = 16;

    private RepresentationMetrics() {
    }

    // ---------------------------------------------------------------- entropy

    /**
     * Prompt entropy: the matrix-based Renyi entropy of order alpha of the Gram matrix K = Z Z^T,
     * where Z is H mean-centred (column means subtracted) and then with every row L2-normalised:
     * S = 1/(1-alpha) log sum_i p_i^alpha over the eigenvalues p_i of K / tr(K) (alpha = 1:
     * -sum p_i log p_i), divided by the log of the largest rank Z can have. 0 means one direction
     * only, 1 means every available direction used equally (an orthonormal set gives 1).
     */
    public static double promptEntropy(double[][] h, double alpha) {
        return promptEntropy(h, alpha, true);
    }

    /**
     * {@link #promptEntropy(double[][], double)} with the mean-centring step optional. The
     * normaliser is log of the maximal rank of Z: min(N, D) uncentred, as Skean et al. write it,
     * but min(N - 1, D) centred, because the centred rows sum to zero and so span at most N - 1
     * dimensions. Dividing a centred entropy by log min(N, D) would cap an orthonormal set at
     * log(N-1)/log(N) instead of 1, and the scale would drift with N.
     */
    public static double promptEntropy(double[][] h, double alpha, boolean centre) {
        checkAlpha(alpha);
        int n = h.length;
        int d = n == 0 ? 0 : h[0].length;
        int maxRank = Math.min(centre ? n - 1 : n, d);
        if (maxRank < 2) {
            return 0; // one direction at most: no spread to measure (and log 1 = 0)
        }
        double[][] z = Matrices.rowNormalised(centre ? Matrices.centred(h) : h);
        return renyiEntropy(normalisedSpectrum(Matrices.gram(z)), alpha) / Math.log(maxRank);
    }

    /** Dataset entropy: {@link #promptEntropy} over one mean-pooled vector per prompt. */
    public static double datasetEntropy(List<double[][]> prompts, double alpha) {
        double[][] pooled = new double[prompts.size()][];
        for (int i = 0; i < pooled.length; i++) {
            pooled[i] = Vectors.meanPool(prompts.get(i));
        }
        return promptEntropy(pooled, alpha);
    }

    /** Renyi entropy of order alpha (natural log) of a probability vector; zeros are skipped. */
    public static double renyiEntropy(double[] p, double alpha) {
        checkAlpha(alpha);
        if (alpha == 1.0) {
            double s = 0;
            for (double x : p) {
                if (x > 0) {
                    s -= x * Math.log(x);
                }
            }
            return s;
        }
        double sum = 0;
        for (double x : p) {
            if (x > 0) {
                sum += Math.pow(x, alpha);
            }
        }
        return sum == 0 ? 0 : Math.log(sum) / (1 - alpha);
    }

    /** Eigenvalues below this fraction of the largest are taken as round-off of a zero eigenvalue. */
    static final double ZERO_EIGENVALUE = 1e-12;

    /**
     * Eigenvalues of a symmetric PSD matrix divided by their sum. Round-off values (negative, or
     * below {@link #ZERO_EIGENVALUE} of the largest) become 0: with alpha < 1 a 1e-17 eigenvalue
     * still adds its square root, so a rank-deficient set would otherwise score above 1.
     */
    static double[] normalisedSpectrum(double[][] symmetric) {
        double[] eig = Matrices.eigenvalues(symmetric);
        double max = 0;
        for (double e : eig) {
            max = Math.max(max, e);
        }
        double sum = 0;
        for (int i = 0; i < eig.length; i++) {
            eig[i] = eig[i] > ZERO_EIGENVALUE * max ? eig[i] : 0;
            sum += eig[i];
        }
        if (sum == 0) {
            return new double[eig.length];
        }
        for (int i = 0; i < eig.length; i++) {
            eig[i] /= sum;
        }
        return eig;
    }

    // ---------------------------------------------------------------- curvature

    /**
     * Curvature of a token trajectory h_0..h_{T-1}: the mean over t of the angle (radians, in
     * [0, pi]) between consecutive steps v_t = h_{t+1} - h_t and v_{t+1}. Steps of zero length are
     * skipped (no direction); with fewer than two steps the curvature is 0.
     */
    public static double curvature(double[][] h) {
        double sum = 0;
        int count = 0;
        double[] previous = null;
        for (int t = 0; t + 1 < h.length; t++) {
            double[] v = Vectors.minus(h[t + 1], h[t]);
            if (Vectors.norm(v) == 0) {
                continue;
            }
            if (previous != null) {
                sum += Math.acos(Math.max(-1, Math.min(1, Vectors.cosine(previous, v))));
                count++;
            }
            previous = v;
        }
        return count == 0 ? 0 : sum / count;
    }

    // ---------------------------------------------------------------- augmentation invariance

    /**
     * InfoNCE as SimCLR's NT-Xent loss between two views (row i of a and row i of b are the
     * positive pair): the 2N rows are L2-normalised, s_ij = cos(z_i, z_j) / temperature, and the
     * loss is the mean over all 2N anchors i of -log(exp(s_i,pos(i)) / sum_{k != i} exp(s_ik)).
     * Lower is more invariant; with N orthonormal identical views it is log(1 + (2N-2) e^{-1/T}).
     */
    public static double infoNce(double[][] a, double[][] b, double temperature) {
        checkPaired(a, b);
        if (!(temperature > 0)) {
            throw new IllegalArgumentException("temperature " + temperature + " must be positive");
        }
        int n = a.length;
        double[][] z = new double[2 * n][];
        for (int i = 0; i < n; i++) {
            z[i] = Vectors.unit(a[i]);
            z[n + i] = Vectors.unit(b[i]);
        }
        double total = 0;
        for (int i = 0; i < 2 * n; i++) {
            int positive = i < n ? i + n : i - n;
            double[] logits = new double[2 * n];
            double max = Double.NEGATIVE_INFINITY;
            for (int k = 0; k < 2 * n; k++) {
                logits[k] = Vectors.dot(z[i], z[k]) / temperature;
                if (k != i) {
                    max = Math.max(max, logits[k]);
                }
            }
            double denominator = 0;
            for (int k = 0; k < 2 * n; k++) {
                if (k != i) {
                    denominator += Math.exp(logits[k] - max);
                }
            }
            total += -(logits[positive] - max - Math.log(denominator));
        }
        return total / (2 * n);
    }

    /** LiDAR with two views: each row pair (a_i, b_i) is one class. See {@link #lidar(List)}. */
    public static double lidar(double[][] a, double[][] b) {
        checkPaired(a, b);
        List<double[][]> classes = new ArrayList<>();
        for (int i = 0; i < a.length; i++) {
            classes.add(new double[][] {a[i], b[i]});
        }
        return lidar(classes);
    }

    /**
     * LiDAR (Thilak et al., 2023): the effective rank of the LDA matrix. Classes are prompts and
     * their samples the augmented views. With class means mu_c, grand mean mu and C classes:
     * <ul>
     *   <li>between-class scatter S_b = 1/C sum_c (mu_c - mu)(mu_c - mu)^T;</li>
     *   <li>within-class scatter S_w = 1/C sum_c 1/(n_c - 1) sum_i (x_ci - mu_c)(x_ci - mu_c)^T,
     *       plus a ridge delta I with delta = {@link #LIDAR_RIDGE} x tr(S_w)/D (delta = 1 when
     *       S_w = 0: views that do not vary at all leave S_b unwhitened);</li>
     *   <li>LDA matrix M = S_w^{-1/2} S_b S_w^{-1/2};</li>
     *   <li>LiDAR = exp(-sum p_k log p_k) with p the eigenvalues of M divided by their sum
     *       (Roy and Vetterli's effective rank), 0 when M = 0.</li>
     * </ul>
     * So it lies in [0, min(C-1, D)]: high when the prompts stay apart relative to how much
     * augmentation moves them, 0 when all classes coincide.
     */
    public static double lidar(List<double[][]> classes) {
        if (classes.size() < 2) {
            throw new IllegalArgumentException("LiDAR needs at least two classes, got " + classes.size());
        }
        int d = classes.get(0)[0].length;
        double[] grand = new double[d];
        double[][] means = new double[classes.size()][];
        int total = 0;
        for (int c = 0; c < classes.size(); c++) {
            double[][] samples = classes.get(c);
            if (samples.length < 2) {
                throw new IllegalArgumentException("LiDAR needs at least two samples per class, class " + c + " has " + samples.length);
            }
            means[c] = Vectors.meanPool(samples);
            for (int j = 0; j < d; j++) {
                grand[j] += means[c][j];
            }
            total += samples.length;
        }
        for (int j = 0; j < d; j++) {
            grand[j] /= classes.size();
        }
        double[][] between = new double[d][d];
        double[][] within = new double[d][d];
        for (int c = 0; c < classes.size(); c++) {
            Matrices.addOuter(between, Vectors.minus(means[c], grand), 1.0 / classes.size());
            double[][] samples = classes.get(c);
            for (double[] x : samples) {
                Matrices.addOuter(within, Vectors.minus(x, means[c]), 1.0 / (classes.size() * (samples.length - 1.0)));
            }
        }
        double trace = 0;
        for (int j = 0; j < d; j++) {
            trace += within[j][j];
        }
        double ridge = trace > 0 ? LIDAR_RIDGE * trace / d : 1.0;
        for (int j = 0; j < d; j++) {
            within[j][j] += ridge;
        }
        RealMatrix whitening = Matrices.inverseSquareRoot(within);
        RealMatrix lda = whitening.multiply(new Array2DRowRealMatrix(between, false)).multiply(whitening);
        return effectiveRank(Matrices.symmetrised(lda.getData()));
    }

    /**
     * DiME (Skean et al., 2023, "a difference of matrix-based entropies") between paired views:
     * with K_a and K_b the Gram matrices of the views after the same centring and row
     * normalisation as {@link #promptEntropy} (unit diagonals), and the joint entropy
     * H(K_a, K_b) = S_alpha(K_a o K_b / tr(K_a o K_b)) of their Hadamard product,
     * <pre>DiME = mean over seeded random permutations pi of H(K_a, pi K_b pi^T) - H(K_a, K_b)</pre>
     * Views that keep each prompt's identity have a lower joint entropy than randomly re-paired
     * ones, so DiME > 0; views unrelated to their pairing give about 0. In nats, not normalised.
     */
    public static double dime(double[][] a, double[][] b, double alpha, int permutations, long seed) {
        checkPaired(a, b);
        checkAlpha(alpha);
        if (permutations < 1) {
            throw new IllegalArgumentException("DiME needs at least one permutation, got " + permutations);
        }
        double[][] ka = Matrices.gram(Matrices.rowNormalised(Matrices.centred(a)));
        double[][] kb = Matrices.gram(Matrices.rowNormalised(Matrices.centred(b)));
        int n = a.length;
        double paired = renyiEntropy(normalisedSpectrum(Matrices.hadamard(ka, kb, Matrices.identity(n))), alpha);
        SplittableRandom random = new SplittableRandom(seed);
        double shuffled = 0;
        for (int p = 0; p < permutations; p++) {
            shuffled += renyiEntropy(normalisedSpectrum(Matrices.hadamard(ka, kb, Matrices.permutation(n, random))), alpha);
        }
        return shuffled / permutations - paired;
    }

    // ---------------------------------------------------------------- helpers

    /** exp of the Shannon entropy of the normalised eigenvalues of a symmetric PSD matrix; 0 for the zero matrix. */
    static double effectiveRank(double[][] symmetric) {
        double[] p = normalisedSpectrum(symmetric);
        double sum = 0;
        for (double x : p) {
            sum += x;
        }
        return sum == 0 ? 0 : Math.exp(renyiEntropy(p, 1.0));
    }

    private static void checkAlpha(double alpha) {
        if (!(alpha > 0)) {
            throw new IllegalArgumentException("Renyi order alpha " + alpha + " must be positive");
        }
    }

    private static void checkPaired(double[][] a, double[][] b) {
        if (a.length != b.length || a.length < 2) {
            throw new IllegalArgumentException("two views need the same number (>= 2) of rows, got " + a.length + " and " + b.length);
        }
    }
}
