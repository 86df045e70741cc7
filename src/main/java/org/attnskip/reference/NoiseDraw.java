package org.attnskip.reference;

/**
 * The seeded noise of the random manipulation, specified exactly so that other code (for example a
 * graph rewriter that feeds the noise as a graph input) can reproduce it.
 *
 * <p>Draws use {@link java.util.Random}, whose algorithm (a 48-bit linear congruential generator,
 * and the polar method for {@code nextGaussian}) is fixed by its Javadoc, so the values are the same
 * on every JVM. Rows are drawn in order, so row t does not depend on how many rows are asked for:
 * the draw for (seed, S, dim) is a prefix of the draw for (seed, S', dim) when S &lt; S'.
 *
 * <p>For a sequence of length S, positions 0..S-2 (the previous tokens) are replaced using rows
 * 0..S-2 of the draw for (seed, S, dim); position S-1 is left alone.
 *
 * <p>Vector arithmetic (norms, dot products, rescaling) is done in double and rounded to float at
 * the end.
 */
public final class NoiseDraw {
    private NoiseDraw() {
    }

    /**
     * rows[t][j] = the (t * dim + j)-th value, counting from 0, of {@code new java.util.Random(seed).nextGaussian()},
     * rounded to float.
     */
    public static float[][] gaussian(long seed, int positions, int dim) {
        java.util.Random random = new java.util.Random(seed);
        float[][] rows = new float[positions][dim];
        for (float[] row : rows) {
            for (int j = 0; j < dim; j++) {
                row[j] = (float) random.nextGaussian();
            }
        }
        return rows;
    }

    /**
     * rows[t] = a permutation of 0..dim-1. One {@code new java.util.Random(seed)} serves all rows in
     * order; each row starts as the identity and, for i = dim-1 down to 1, swaps entries i and
     * {@code random.nextInt(i + 1)} (Fisher-Yates).
     */
    public static int[][] permutations(long seed, int positions, int dim) {
        java.util.Random random = new java.util.Random(seed);
        int[][] rows = new int[positions][dim];
        for (int[] row : rows) {
            for (int j = 0; j < dim; j++) {
                row[j] = j;
            }
            for (int i = dim - 1; i > 0; i--) {
                int j = random.nextInt(i + 1);
                int swap = row[i];
                row[i] = row[j];
                row[j] = swap;
            }
        }
        return rows;
    }

    /** GAUSSIAN: g * (|h| / |g|), the Gaussian row rescaled to the norm of h (zero when g is zero). */
    public static float[] sameNorm(float[] h, float[] g) {
        double gNorm = Vectors.norm(g);
        double scale = gNorm == 0 ? 0 : Vectors.norm(h) / gNorm;
        float[] out = new float[h.length];
        for (int j = 0; j < h.length; j++) {
            out[j] = (float) (g[j] * scale);
        }
        return out;
    }

    /**
     * ANGLE: u = g - (g.h / h.h) h (Gram-Schmidt of the Gaussian row against h), then
     * cos(a) * h + sin(a) * |h| * u / |u|. The result has the norm of h and makes angle a with it.
     * When h is zero the result is zero; when u is zero (g parallel to h) it is cos(a) * h.
     */
    public static float[] atAngle(float[] h, float[] g, double degrees) {
        double hh = Vectors.dot(h, h);
        float[] out = new float[h.length];
        if (hh == 0) {
            return out;
        }
        double along = Vectors.dot(g, h) / hh;
        double[] u = new double[h.length];
        for (int j = 0; j < h.length; j++) {
            u[j] = g[j] - along * h[j];
        }
        double uNorm = Math.sqrt(Vectors.dot(u, u));
        double radians = Math.toRadians(degrees);
        double cos = Math.cos(radians);
        double sinTimesNorm = uNorm == 0 ? 0 : Math.sin(radians) * Math.sqrt(hh) / uNorm;
        for (int j = 0; j < h.length; j++) {
            out[j] = (float) (cos * h[j] + sinTimesNorm * u[j]);
        }
        return out;
    }

    /** SHUFFLE: out[j] = h[permutation[j]]. */
    public static float[] shuffled(float[] h, int[] permutation) {
        float[] out = new float[h.length];
        for (int j = 0; j < h.length; j++) {
            out[j] = h[permutation[j]];
        }
        return out;
    }

    /**
     * The noise of one manipulation for a sequence of `positions` tokens of width dim: call
     * {@link Draw#replace} with a position and the hidden vector there.
     */
    public static Draw draw(Noise noise, long seed, int positions, int dim) {
        return new Draw(noise, noise instanceof Noise.Shuffle ? null : gaussian(seed, positions, dim),
                noise instanceof Noise.Shuffle ? permutations(seed, positions, dim) : null);
    }

    /** Row t of the draw replaces the hidden vector of position t. */
    public static final class Draw {
        private final Noise noise;
        private final float[][] gaussian;
        private final int[][] permutations;

        private Draw(Noise noise, float[][] gaussian, int[][] permutations) {
            this.noise = noise;
            this.gaussian = gaussian;
            this.permutations = permutations;
        }

        public float[] replace(int position, float[] h) {
            if (noise instanceof Noise.Gaussian) {
                return sameNorm(h, gaussian[position]);
            }
            if (noise instanceof Noise.Angle angle) {
                return atAngle(h, gaussian[position], angle.degrees());
            }
            return shuffled(h, permutations[position]);
        }
    }
}
