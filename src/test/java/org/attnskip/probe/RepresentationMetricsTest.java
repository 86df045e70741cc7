package org.attnskip.probe;

import org.attnskip.reference.Vectors;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The metrics on sets whose answers are known by hand. */
class RepresentationMetricsTest {
    private static final double EPS = 1e-9;

    @Test
    void rankOneSetHasZeroEntropy() {
        double[] v = {0.3, -1.2, 2.0, 0.7, 0.1};
        double[] scale = {1, -2, 3.5, 0.25, -4, 7};
        double[][] h = new double[scale.length][];
        for (int i = 0; i < scale.length; i++) {
            h[i] = times(v, scale[i]);
        }
        assertEquals(0.0, RepresentationMetrics.promptEntropy(h, 1.0), EPS);
        assertEquals(0.0, RepresentationMetrics.promptEntropy(h, 2.0), EPS);
        assertEquals(0.0, RepresentationMetrics.promptEntropy(h, 1.0, false), EPS);
    }

    @Test
    void orthonormalSetHasEntropyOneInTheCentredFormTheProbeUses() {
        double[][] h = rotatedOrthonormal(5, 8, 3);
        // Centred, the rows span N-1 = 4 directions equally (Gram (I - 11^T/N) scaled), and the normaliser is log 4.
        assertEquals(1.0, RepresentationMetrics.promptEntropy(h, 1.0), EPS);
        assertEquals(1.0, RepresentationMetrics.promptEntropy(h, 2.0), EPS);
        assertEquals(1.0, RepresentationMetrics.promptEntropy(h, 0.5), EPS);
        assertEquals(1.0, RepresentationMetrics.promptEntropy(h, 1.0, false), EPS);
        assertEquals(1.0, RepresentationMetrics.promptEntropy(h, 2.0, false), EPS);
    }

    @Test
    void moreSamplesThanDimensionsReachOneWhenEveryDimensionIsUsedEqually() {
        // Rows +e_j and -e_j for every j: N = 2D, mean 0, Z^T Z = 2 I, so D equal eigenvalues; the normaliser is log D.
        int d = 4;
        double[][] h = new double[2 * d][d];
        for (int j = 0; j < d; j++) {
            h[2 * j][j] = 1;
            h[2 * j + 1][j] = -1;
        }
        assertEquals(1.0, RepresentationMetrics.promptEntropy(h, 1.0), EPS);
        // Half the dimensions only: log(D/2)/log(D).
        double[][] half = new double[2 * d][d];
        for (int j = 0; j < d; j++) {
            half[2 * j][j % 2] = 1;
            half[2 * j + 1][j % 2] = -1;
        }
        assertEquals(Math.log(2) / Math.log(4), RepresentationMetrics.promptEntropy(half, 1.0), EPS);
    }

    @Test
    void twoEqualAndOneHalfWeightDirections() {
        // Uncentred rows e1, e1, e2: K/tr(K) has eigenvalues 2/3 and 1/3.
        double[][] h = {{1, 0, 0}, {1, 0, 0}, {0, 1, 0}};
        double expected = -(2.0 / 3 * Math.log(2.0 / 3) + 1.0 / 3 * Math.log(1.0 / 3)) / Math.log(3);
        assertEquals(expected, RepresentationMetrics.promptEntropy(h, 1.0, false), EPS);
        double expectedRenyi2 = -Math.log(4.0 / 9 + 1.0 / 9) / Math.log(3);
        assertEquals(expectedRenyi2, RepresentationMetrics.promptEntropy(h, 2.0, false), EPS);
    }

    @Test
    void datasetEntropyPoolsEachPrompt() {
        // Prompts whose token means are e1, e2, e3 (each +/- e4): the pooled set is e1, e2, e3.
        List<double[][]> prompts = new ArrayList<>();
        for (int p = 0; p < 3; p++) {
            double[] plus = new double[4];
            double[] minus = new double[4];
            plus[p] = 1;
            minus[p] = 1;
            plus[3] = 1;
            minus[3] = -1;
            prompts.add(new double[][] {plus, minus});
        }
        // Centred, three pooled vectors span two directions equally: the maximum, 1.
        assertEquals(1.0, RepresentationMetrics.datasetEntropy(prompts, 1.0), EPS);
        // Two prompts with the same pooled vector and a third: centred, one direction only.
        prompts.set(1, prompts.get(0));
        assertEquals(0.0, RepresentationMetrics.datasetEntropy(prompts, 1.0), EPS);
    }

    @Test
    void straightLineHasZeroCurvature() {
        double[] start = {1, 2, -3, 0.5};
        double[] dir = {0.2, -0.1, 0.7, 1.5};
        double[] steps = {0, 1, 1.5, 4, 4.2, 9};
        double[][] h = new double[steps.length][];
        for (int t = 0; t < steps.length; t++) {
            h[t] = plus(start, times(dir, steps[t]));
        }
        assertEquals(0.0, RepresentationMetrics.curvature(h), 1e-7);
    }

    @Test
    void zigZagHasKnownAngles() {
        double[][] right = {{0, 0}, {1, 1}, {2, 0}, {3, 1}, {4, 0}};
        assertEquals(Math.PI / 2, RepresentationMetrics.curvature(right), EPS);
        // Steps (1,0), (1,1), (0,1): 45 degrees twice.
        double[][] bend = {{0, 0}, {1, 0}, {2, 1}, {2, 2}};
        assertEquals(Math.PI / 4, RepresentationMetrics.curvature(bend), EPS);
        // Going back and forth is the maximal turn.
        double[][] back = {{0, 0}, {1, 0}, {0, 0}};
        assertEquals(Math.PI, RepresentationMetrics.curvature(back), EPS);
    }

    @Test
    void infoNceIsOptimalForIdenticalViews() {
        int n = 6;
        double[][] a = rotatedOrthonormal(n, 10, 11);
        double identical = RepresentationMetrics.infoNce(a, a, 0.1);
        // Positive cos 1, the 2N-2 negatives cos 0: -log(e^10 / (e^10 + (2N-2) e^0)).
        assertEquals(Math.log(1 + (2 * n - 2) * Math.exp(-10)), identical, 1e-12);

        double[][] shuffled = new double[n][];
        for (int i = 0; i < n; i++) {
            shuffled[i] = a[(i + 1) % n];
        }
        double noisy = RepresentationMetrics.infoNce(a, noisy(a, 0.3, 5), 0.1);
        double wrong = RepresentationMetrics.infoNce(a, shuffled, 0.1);
        assertTrue(identical < noisy, identical + " < " + noisy);
        assertTrue(noisy < wrong, noisy + " < " + wrong);
        // A shuffled pairing puts cos 1 on one negative and cos 0 on the positive: -log(e^0 / (e^10 + 2N-2)).
        assertEquals(Math.log(Math.exp(10) + 2 * n - 2), wrong, 1e-9);
    }

    @Test
    void lidarCountsSeparatedClassesAndIsZeroForIdenticalOnes() {
        int d = 6;
        int classes = 4;
        // Class c: mean 10 e_c, views mean +/- 0.1 e_j for every j, so the within scatter is isotropic
        // and the LDA matrix is the between scatter, which has C-1 equal eigenvalues.
        List<double[][]> separated = new ArrayList<>();
        List<double[][]> identical = new ArrayList<>();
        List<double[][]> collinear = new ArrayList<>();
        for (int c = 0; c < classes; c++) {
            double[] mean = new double[d];
            mean[c] = 10;
            separated.add(isotropicViews(mean, 0.1));
            identical.add(isotropicViews(new double[d], 0.1));
            double[] onLine = new double[d];
            onLine[0] = 3 * c;
            collinear.add(isotropicViews(onLine, 0.1));
        }
        assertEquals(classes - 1, RepresentationMetrics.lidar(separated), 1e-6);
        assertEquals(0.0, RepresentationMetrics.lidar(identical), EPS);
        assertEquals(1.0, RepresentationMetrics.lidar(collinear), 1e-6);

        double[][] a = rotatedOrthonormal(5, 8, 2);
        double twoViews = RepresentationMetrics.lidar(a, noisy(a, 0.01, 3));
        // Two views give a within scatter of rank <= 5 in 8 dims, so whitening weighs the directions unevenly:
        // above the collinear case, at most C-1.
        assertTrue(twoViews > 1.5 && twoViews <= 4.0 + 1e-9, "LiDAR of 5 separated prompts: " + twoViews);
        double[][] same = new double[5][];
        java.util.Arrays.fill(same, a[0]);
        assertEquals(0.0, RepresentationMetrics.lidar(same, same), EPS);
    }

    @Test
    void dimeIsPositiveForPairedViewsAndAboutZeroForUnrelatedOnes() {
        // Few dimensions, so that the Gram matrices have structure that a wrong pairing destroys.
        double[][] a = gaussian(12, 4, 1);
        double paired = RepresentationMetrics.dime(a, noisy(a, 0.05, 2), 1.0, 32, 9);
        double unrelated = RepresentationMetrics.dime(a, gaussian(12, 4, 3), 1.0, 32, 9);
        System.out.printf("DiME paired %.4f unrelated %.4f%n", paired, unrelated);
        assertTrue(paired > 0.2, "paired DiME " + paired);
        assertTrue(Math.abs(unrelated) < 0.1, "unrelated DiME " + unrelated);
    }

    @Test
    void dimeSeesSeparableClassesAndNotIdenticalOnes() {
        // Classes are prompts, the two views two noisy copies of each. Separable: 24 class means at generic
        // (Gaussian) positions in 4 dims, noise 0.05. Identical: one shared mean, the same noise, so a view
        // says nothing about which class it came from.
        int classes = 24;
        int d = 4;
        double[][] means = gaussian(classes, d, 21);
        double[][] shared = new double[classes][];
        java.util.Arrays.fill(shared, means[0]);
        for (long seed = 1; seed <= 4; seed++) {
            double separable = RepresentationMetrics.dime(noisy(means, 0.05, 100 + seed), noisy(means, 0.05, 200 + seed), 1.0, 32, seed);
            double identical = RepresentationMetrics.dime(noisy(shared, 0.05, 100 + seed), noisy(shared, 0.05, 200 + seed), 1.0, 32, seed);
            double blurred = RepresentationMetrics.dime(noisy(means, 0.5, 100 + seed), noisy(means, 0.5, 200 + seed), 1.0, 32, seed);
            System.out.printf("DiME seed %d: separable %.4f blurred %.4f identical %.4f%n", seed, separable, blurred, identical);
            assertTrue(separable > 0.3, "separable DiME " + separable);
            assertTrue(Math.abs(identical) < 0.1, "identical DiME " + identical);
            // Noise half the spread between classes keeps only part of the identity.
            assertTrue(identical < blurred && blurred < separable, blurred + " between " + identical + " and " + separable);
        }
        // Views without any variation at all: zero Gram matrices, DiME exactly 0.
        assertEquals(0.0, RepresentationMetrics.dime(shared, shared, 1.0, 8, 1), EPS);
    }

    @Test
    void dimeIsBlindToAnEquidistantSetWhereLidarIsNot() {
        // The LiDAR fixture's classes 10 e_c are equidistant: every re-pairing leaves the centred Gram matrix
        // unchanged, so DiME is ~0 however separated they are. Why the report gives LiDAR next to DiME.
        int d = 6;
        int classes = 4;
        double[][] a = new double[classes][];
        double[][] b = new double[classes][];
        List<double[][]> separated = new ArrayList<>();
        for (int c = 0; c < classes; c++) {
            double[] mean = new double[d];
            mean[c] = 10;
            double[][] views = isotropicViews(mean, 0.1);
            separated.add(views);
            a[c] = views[0];
            b[c] = views[1];
        }
        assertEquals(0.0, RepresentationMetrics.dime(a, b, 1.0, 16, 3), 0.01);
        assertEquals(classes - 1, RepresentationMetrics.lidar(separated), 1e-6);
    }

    // ---------------------------------------------------------------- fixtures

    private static double[][] isotropicViews(double[] mean, double step) {
        double[][] views = new double[2 * mean.length][];
        for (int j = 0; j < mean.length; j++) {
            views[2 * j] = mean.clone();
            views[2 * j + 1] = mean.clone();
            views[2 * j][j] += step;
            views[2 * j + 1][j] -= step;
        }
        return views;
    }

    /** n orthonormal rows in d dims: the first n columns of a random orthogonal matrix (Gram-Schmidt). */
    static double[][] rotatedOrthonormal(int n, int d, long seed) {
        double[][] g = gaussian(n, d, seed);
        for (int i = 0; i < n; i++) {
            for (int k = 0; k < i; k++) {
                double dot = Vectors.dot(g[i], g[k]);
                for (int j = 0; j < d; j++) {
                    g[i][j] -= dot * g[k][j];
                }
            }
            double norm = Vectors.norm(g[i]);
            for (int j = 0; j < d; j++) {
                g[i][j] /= norm;
            }
        }
        return g;
    }

    private static double[][] gaussian(int n, int d, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        double[][] g = new double[n][d];
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < d; j++) {
                g[i][j] = gauss(r);
            }
        }
        return g;
    }

    private static double[][] noisy(double[][] a, double sigma, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        double[][] out = new double[a.length][];
        for (int i = 0; i < a.length; i++) {
            out[i] = a[i].clone();
            for (int j = 0; j < out[i].length; j++) {
                out[i][j] += sigma * gauss(r);
            }
        }
        return out;
    }

    /**
     * More dimensions than prompts and two nearly identical views per prompt: the ridge dominates
     * the within-class scatter. commons-math3's EigenDecomposition failed to converge on 107 of 120
     * such cases (and on stories-deep12); LiDAR must come out finite and, as the LDA matrix is
     * scale-free, the same for the states scaled by 1e-3.
     */
    @Test
    void lidarOnNearlyIdenticalViewsInManyDimensionsIsFiniteAndScaleFree() {
        for (int seed = 0; seed < 5; seed++) {
            SplittableRandom r = new SplittableRandom(seed);
            int n = 32;
            int d = 96;
            double[] common = new double[d];
            for (int j = 0; j < d; j++) {
                common[j] = 5 * gauss(r);
            }
            double[][] a = new double[n][d];
            double[][] b = new double[n][d];
            for (int i = 0; i < n; i++) {
                for (int j = 0; j < d; j++) {
                    double base = common[j] + gauss(r);
                    a[i][j] = base + 0.01 * gauss(r);
                    b[i][j] = base + 0.01 * gauss(r);
                }
            }
            double lidar = RepresentationMetrics.lidar(a, b);
            double[][] smallA = new double[n][];
            double[][] smallB = new double[n][];
            for (int i = 0; i < n; i++) {
                smallA[i] = times(a[i], 1e-3);
                smallB[i] = times(b[i], 1e-3);
            }
            assertTrue(Double.isFinite(lidar) && lidar > 1 && lidar <= n, "seed " + seed + ": " + lidar);
            assertEquals(lidar, RepresentationMetrics.lidar(smallA, smallB), 1e-6 * lidar, "seed " + seed);
        }
    }

    private static double gauss(SplittableRandom r) {
        return Math.sqrt(-2 * Math.log(1 - r.nextDouble())) * Math.cos(2 * Math.PI * r.nextDouble());
    }

    private static double[] times(double[] v, double s) {
        double[] out = new double[v.length];
        for (int i = 0; i < v.length; i++) {
            out[i] = v[i] * s;
        }
        return out;
    }

    private static double[] plus(double[] a, double[] b) {
        double[] out = new double[a.length];
        for (int i = 0; i < a.length; i++) {
            out[i] = a[i] + b[i];
        }
        return out;
    }
}
