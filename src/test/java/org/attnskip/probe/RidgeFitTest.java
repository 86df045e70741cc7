package org.attnskip.probe;

import org.attnskip.onnx.BadInputException;
import org.attnskip.reference.AffineMap;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

class RidgeFitTest {
    private static final float[][] X = {{1, 0}, {0, 1}, {1, 1}, {2, 1}, {0, 3}};
    private static final float[][] Y = {{1, 2}, {0, 1}, {3, 1}, {2, 2}, {1, 0}};

    /**
     * Five points in 2-D, ridge 0.1. By hand: mean x = (0.8, 1.2), centred scatter
     * C = [[2.8, -1.8], [-1.8, 4.8]], trace 7.6, so lambda = 0.1 * 7.6 / 2 = 0.38; M solves
     * (C + 0.38 I) M = Xc^T Yc, b = mean y - mean x . M. Expected values from numpy.linalg.solve.
     */
    @Test
    void ridgeSolutionOfATwoByTwoCaseMatchesTheNormalEquations() {
        RidgeFit fit = new RidgeFit(2, 2);
        for (int t = 0; t < X.length; t++) {
            fit.add(X[t], Y[t]);
        }
        AffineMap map = fit.solve(0.1, 0);
        float[] expectedM = {0.88510021f, 0.42592425f, 0.2303437f, -0.46975605f};
        for (int i = 0; i < 4; i++) {
            assertEquals(expectedM[i], map.first()[i], 1e-6, "M[" + i / 2 + "][" + i % 2 + "]");
        }
        assertEquals(0.41550739f, map.bias()[0], 1e-6);
        assertEquals(1.42296787f, map.bias()[1], 1e-6);
        assertNull(map.second());
    }

    @Test
    void withoutRidgeExactAffineDataIsRecovered() {
        // y = x . M + b with M = [[2, -1, 0], [0.5, 3, 1], [0, 0, -2]], b = (1, -2, 0.25)
        double[][] m = {{2, -1, 0}, {0.5, 3, 1}, {0, 0, -2}};
        double[] b = {1, -2, 0.25};
        RidgeFit fit = new RidgeFit(3, 3);
        java.util.SplittableRandom r = new java.util.SplittableRandom(3);
        for (int t = 0; t < 300; t++) { // more rows than one accumulation block
            float[] x = {(float) r.nextDouble(-1, 1), (float) r.nextDouble(-1, 1), (float) r.nextDouble(-1, 1)};
            float[] y = new float[3];
            for (int j = 0; j < 3; j++) {
                double v = b[j];
                for (int i = 0; i < 3; i++) {
                    v += x[i] * m[i][j];
                }
                y[j] = (float) v;
            }
            fit.add(x, y);
        }
        AffineMap map = fit.solve(0, 0);
        for (int i = 0; i < 3; i++) {
            for (int j = 0; j < 3; j++) {
                assertEquals(m[i][j], map.first()[i * 3 + j], 1e-5);
            }
            assertEquals(b[i], map.bias()[i], 1e-5);
        }
    }

    @Test
    void rankOneOfARankOneMapIsTheMapItself() {
        // M = u v^T with u = (1, 2, -1), v = (0.5, 0, 1): rank 1, so its rank-1 factorisation loses nothing
        double[] u = {1, 2, -1};
        double[] v = {0.5, 0, 1};
        RidgeFit fit = new RidgeFit(3, 3);
        java.util.SplittableRandom r = new java.util.SplittableRandom(5);
        float[][] xs = new float[30][];
        for (int t = 0; t < xs.length; t++) {
            float[] x = {(float) r.nextDouble(-1, 1), (float) r.nextDouble(-1, 1), (float) r.nextDouble(-1, 1)};
            xs[t] = x;
            double dot = x[0] * u[0] + x[1] * u[1] + x[2] * u[2];
            fit.add(x, new float[] {(float) (dot * v[0] + 0.5), (float) (dot * v[1]), (float) (dot * v[2] - 1)});
        }
        AffineMap map = fit.solve(0, 1);
        assertEquals(1, map.rank());
        for (float[] x : xs) {
            double dot = x[0] * u[0] + x[1] * u[1] + x[2] * u[2];
            float[] y = map.apply(x);
            assertEquals(dot * v[0] + 0.5, y[0], 1e-5);
            assertEquals(dot * v[1], y[1], 1e-5);
            assertEquals(dot * v[2] - 1, y[2], 1e-5);
        }
    }

    @Test
    void singularInputsWithoutRidgeAreABadInput() {
        RidgeFit fit = new RidgeFit(2, 2);
        for (int t = 0; t < 5; t++) {
            fit.add(new float[] {t, 2 * t}, new float[] {t, 1}); // x lies on a line: C is singular
        }
        assertThrows(BadInputException.class, () -> fit.solve(0, 0));
        assertEquals(1.0, fit.solve(0.01, 0).apply(new float[] {1, 2})[1], 1e-6); // ridge makes it solvable; y1 is constant
    }
}
