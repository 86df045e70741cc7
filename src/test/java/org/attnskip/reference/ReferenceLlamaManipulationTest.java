package org.attnskip.reference;

import org.attnskip.Golden;
import org.attnskip.export.Llama2cCheckpoint;
import org.attnskip.export.LlamaConfig;
import org.attnskip.export.LlamaWeights;
import org.attnskip.export.TestLlamaWeights;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.Set;

import static org.attnskip.Deltas.maxAbsDelta;
import static org.junit.jupiter.api.Assertions.*;

/**
 * The manipulations of MANIPULATIONS.md in the reference implementation, checked against the naive
 * brute force, against the unmanipulated model where they must change nothing, and for their
 * defining properties.
 */
class ReferenceLlamaManipulationTest {
    /** float reference against the double brute force: float rounding over a few layers. */
    private static final double TOLERANCE = 1e-4;

    /** A small model with everything the reference supports: GQA, q/k/v biases, Llama 3 rope scaling. */
    private static final LlamaConfig SYNTHETIC = new LlamaConfig(32, 48, 4, 4, 2, 64, 32, 1e-5f, 10000f,
            new LlamaConfig.RopeScaling(8f, 1f, 4f, 64), false, true, 1, 2);
    private static final int[] SYNTHETIC_TOKENS = {1, 17, 42, 5, 63, 8, 8, 30, 2, 11, 57, 19};

    private static LlamaWeights storiesWeights;

    /** stories260K, loaded once; skips the calling test when the shared models are missing. */
    private static LlamaWeights stories() {
        if (storiesWeights == null) {
            storiesWeights = Llama2cCheckpoint.read(Golden.checkpoint("stories260K"));
        }
        return storiesWeights;
    }

    private static int[] storyIds;

    /** The first 20 ids of llama2.c's greedy story after "Once upon a time". */
    private static int[] storyTokens() {
        if (storyIds == null) {
            storyIds = Arrays.copyOf(Golden.load("stories260K", "once_upon_a_time").allIds(), 20);
        }
        return storyIds;
    }

    // ------------------------------------------------------------ against the brute force

    @Test
    void normalPassMatchesBruteForceOnSyntheticModel() {
        LlamaWeights w = TestLlamaWeights.random(SYNTHETIC, 5);
        assertMatchesBruteForce(w, SYNTHETIC_TOKENS, Manipulation.NONE, "synthetic none");
    }

    @Test
    void dropMatchesBruteForce() {
        LlamaWeights w = TestLlamaWeights.random(SYNTHETIC, 5);
        for (Set<Integer> layers : Set.of(Set.of(0), Set.of(1, 3), Set.of(0, 1, 2, 3))) {
            assertMatchesBruteForce(w, SYNTHETIC_TOKENS, new Manipulation.Drop(layers), "synthetic drop " + layers);
        }
        assertMatchesBruteForce(stories(), storyTokens(), new Manipulation.Drop(Set.of(3, 4)), "stories260K drop {3, 4}");
    }

    @Test
    void freezeMatchesBruteForce() {
        LlamaWeights w = TestLlamaWeights.random(SYNTHETIC, 5);
        for (int k = 0; k <= 4; k++) {
            assertMatchesBruteForce(w, SYNTHETIC_TOKENS, new Manipulation.Freeze(k), "synthetic freeze " + k);
        }
        for (int k : new int[]{0, 2, 3}) {
            assertMatchesBruteForce(stories(), storyTokens(), new Manipulation.Freeze(k), "stories260K freeze " + k);
        }
    }

    @Test
    void singleInputFreezeMatchesBruteForce() {
        LlamaWeights w = TestLlamaWeights.random(SYNTHETIC, 5);
        for (int k = 0; k <= 4; k++) {
            assertMatchesBruteForce(w, SYNTHETIC_TOKENS, new Manipulation.SingleInputFreeze(k), "synthetic single-input " + k);
        }
        for (int k : new int[]{0, 2, 3}) {
            assertMatchesBruteForce(stories(), storyTokens(), new Manipulation.SingleInputFreeze(k), "stories260K single-input " + k);
        }
    }

    @Test
    void randomMatchesBruteForce() {
        LlamaWeights w = TestLlamaWeights.random(SYNTHETIC, 5);
        for (Noise noise : new Noise[]{Noise.GAUSSIAN, Noise.angle(60), Noise.SHUFFLE}) {
            for (int k : new int[]{0, 2}) {
                assertMatchesBruteForce(w, SYNTHETIC_TOKENS, new Manipulation.Random(k, noise, 99),
                        "synthetic random " + k + " " + noise);
            }
            assertMatchesBruteForce(stories(), storyTokens(), new Manipulation.Random(3, noise, 7), "stories260K random 3 " + noise);
        }
    }

    @Test
    void switchMatchesBruteForce() {
        LlamaWeights w = TestLlamaWeights.random(SYNTHETIC, 5);
        ReferenceLlama reference = new ReferenceLlama(w);
        float[] foreign = reference.residualStreams(new int[]{1, 9, 33, 33})[2][3];
        assertMatchesBruteForce(w, SYNTHETIC_TOKENS, new Manipulation.Switch(2, 4, foreign), "synthetic switch");
        assertMatchesBruteForce(w, SYNTHETIC_TOKENS, new Manipulation.Switch(4, 4, foreign), "synthetic switch at L");
    }

    @Test
    void residualStreamsMatchBruteForce() {
        LlamaWeights w = TestLlamaWeights.random(SYNTHETIC, 5);
        float[][][] streams = new ReferenceLlama(w).residualStreams(SYNTHETIC_TOKENS);
        double[][][] want = new NaiveLlama(w).run(SYNTHETIC_TOKENS, Manipulation.NONE);
        assertEquals(5, streams.length);
        double maxDiff = 0;
        for (int l = 0; l <= 4; l++) {
            assertEquals(SYNTHETIC_TOKENS.length, streams[l].length);
            for (int t = 0; t < SYNTHETIC_TOKENS.length; t++) {
                assertEquals(32, streams[l][t].length);
                maxDiff = Math.max(maxDiff, maxAbsDelta(want[l][t], streams[l][t]));
            }
        }
        assertTrue(maxDiff <= TOLERANCE, "residual streams: max diff " + maxDiff);
        assertArrayEquals(Arrays.copyOfRange(w.tokenEmbedding, 17 * 32, 18 * 32), streams[0][1], "layer 0 input is the embedding");
    }

    @Test
    void llama3RopeScalingFrequencies() {
        // head size 8, theta 10000: wavelengths 2 pi * 10000^(2j/8) = 6.3, 62.8, 628, 6283; with original
        // context 64, low 1, high 4 the bands are < 16 (kept), 16..64 (smoothed), > 64 (divided by 8)
        float[] inv = LlamaBlocks.ropeInverseFrequencies(SYNTHETIC);
        double smooth = (64 / (2 * Math.PI * 10) - 1) / 3.0;
        assertEquals(1.0, inv[0], 1e-7);
        assertEquals((1 - smooth) * 0.1 / 8 + smooth * 0.1, inv[1], 1e-8);
        assertEquals(0.01 / 8, inv[2], 1e-9);
        assertEquals(0.001 / 8, inv[3], 1e-10);
    }

    // ------------------------------------------------------------ where a manipulation must change nothing

    @Test
    void noOpManipulationsEqualTheNormalModelExactly() {
        ReferenceLlama reference = new ReferenceLlama(stories());
        int layers = stories().config.layers();
        float[][] normal = reference.logitsAllPositions(storyTokens());
        assertArrayEquals(normal, reference.logitsAllPositions(storyTokens(), new Manipulation.Drop(Set.of())), "drop {}");
        assertArrayEquals(normal, reference.logitsAllPositions(storyTokens(), new Manipulation.Freeze(layers)), "freeze L");
        assertArrayEquals(normal, reference.logitsAllPositions(storyTokens(), new Manipulation.Freeze(layers - 1)), "freeze L-1");
        assertArrayEquals(normal, reference.logitsAllPositions(storyTokens(), new Manipulation.SingleInputFreeze(layers)),
                "single-input L");
        assertArrayEquals(normal, reference.logitsAllPositions(storyTokens(), new Manipulation.SingleInputFreeze(layers - 1)),
                "single-input L-1");
        for (Noise noise : new Noise[]{Noise.GAUSSIAN, Noise.angle(90), Noise.SHUFFLE}) {
            assertArrayEquals(normal, reference.logitsAllPositions(storyTokens(), new Manipulation.Random(layers, noise, 3)),
                    "random L " + noise);
        }
        // step-by-step decoding gives the same logits as the full-sequence pass
        reference.reset();
        for (int t = 0; t < storyTokens().length; t++) {
            assertArrayEquals(normal[t], reference.forward(storyTokens()[t], t), "forward at " + t);
        }
    }

    @Test
    void manipulationsLeaveTheFirstPositionAlone() {
        // position 0 has no previous tokens
        ReferenceLlama reference = new ReferenceLlama(stories());
        float[] normal = reference.logitsAllPositions(storyTokens())[0];
        assertArrayEquals(normal, reference.logitsAllPositions(storyTokens(), new Manipulation.Freeze(0))[0]);
        assertArrayEquals(normal, reference.logitsAllPositions(storyTokens(), new Manipulation.Random(0, Noise.GAUSSIAN, 1))[0]);
    }

    @Test
    void freezeBelowTheLastLayerChangesLaterPositions() {
        ReferenceLlama reference = new ReferenceLlama(stories());
        float[][] normal = reference.logitsAllPositions(storyTokens());
        float[][] frozen = reference.logitsAllPositions(storyTokens(), new Manipulation.Freeze(1));
        double diff = maxAbsDelta(toDouble(normal[storyTokens().length - 1]), frozen[storyTokens().length - 1]);
        assertTrue(diff > 1e-2, "freeze at 1 moved the last logits by only " + diff);
    }

    @Test
    void switchWithTheTokensOwnStateChangesNothing() {
        ReferenceLlama reference = new ReferenceLlama(stories());
        float[][] normal = reference.logitsAllPositions(storyTokens());
        float[][][] streams = reference.residualStreams(storyTokens());
        for (int layer : new int[]{0, 2, 5}) {
            float[][] switched = reference.logitsAllPositions(storyTokens(),
                    new Manipulation.Switch(layer, 7, streams[layer][7]));
            assertArrayEquals(normal, switched, "switch at layer " + layer);
        }
    }

    @Test
    void switchOnlyAffectsItsPositionAndLater() {
        ReferenceLlama reference = new ReferenceLlama(stories());
        float[][] normal = reference.logitsAllPositions(storyTokens());
        float[] foreign = reference.residualStreams(new int[]{1, 317, 269, 368})[1][3];
        float[][] switched = reference.logitsAllPositions(storyTokens(), new Manipulation.Switch(1, 7, foreign));
        for (int t = 0; t < 7; t++) {
            assertArrayEquals(normal[t], switched[t], "position " + t + " is before the switch");
        }
        assertTrue(maxAbsDelta(toDouble(normal[7]), switched[7]) > 1e-2);
    }

    // ------------------------------------------------------------ random: reproducible noise with the right shape

    @Test
    void randomIsReproducibleAndSeeded() {
        ReferenceLlama reference = new ReferenceLlama(stories());
        for (Noise noise : new Noise[]{Noise.GAUSSIAN, Noise.angle(45), Noise.SHUFFLE}) {
            float[][] a = reference.logitsAllPositions(storyTokens(), new Manipulation.Random(2, noise, 1234));
            float[][] b = reference.logitsAllPositions(storyTokens(), new Manipulation.Random(2, noise, 1234));
            float[][] c = reference.logitsAllPositions(storyTokens(), new Manipulation.Random(2, noise, 1235));
            assertArrayEquals(a, b, "same seed " + noise);
            int last = storyTokens().length - 1;
            assertTrue(maxAbsDelta(toDouble(a[last]), c[last]) > 1e-3, "another seed " + noise);
        }
    }

    @Test
    void gaussianNoiseKeepsTheNormOfRealHiddenStates() {
        float[][] hidden = new ReferenceLlama(stories()).residualStreams(storyTokens())[3];
        float[][] g = NoiseDraw.gaussian(77, hidden.length, hidden[0].length);
        for (int t = 0; t < hidden.length; t++) {
            float[] replaced = NoiseDraw.sameNorm(hidden[t], g[t]);
            assertEquals(norm(hidden[t]), norm(replaced), 1e-6 * norm(hidden[t]));
            assertEquals(1.0, cosine(replaced, g[t]), 1e-6, "a rescaled Gaussian row");
        }
    }

    @Test
    void angleNoiseHasTheRequestedAngleAndNorm() {
        float[][] hidden = new ReferenceLlama(stories()).residualStreams(storyTokens())[2];
        float[][] g = NoiseDraw.gaussian(5, hidden.length, hidden[0].length);
        for (double degrees : new double[]{0, 10, 45, 90, 135, 180}) {
            for (int t = 0; t < hidden.length; t++) {
                float[] replaced = NoiseDraw.atAngle(hidden[t], g[t], degrees);
                assertEquals(Math.cos(Math.toRadians(degrees)), cosine(hidden[t], replaced), 1e-5, degrees + " degrees");
                assertEquals(norm(hidden[t]), norm(replaced), 1e-5 * norm(hidden[t]));
            }
        }
    }

    @Test
    void shuffleIsAPermutationOfTheValues() {
        float[][] hidden = new ReferenceLlama(stories()).residualStreams(storyTokens())[4];
        int[][] permutations = NoiseDraw.permutations(9, hidden.length, hidden[0].length);
        boolean moved = false;
        for (int t = 0; t < hidden.length; t++) {
            int[] sorted = permutations[t].clone();
            Arrays.sort(sorted);
            for (int j = 0; j < sorted.length; j++) {
                assertEquals(j, sorted[j]);
            }
            float[] replaced = NoiseDraw.shuffled(hidden[t], permutations[t]);
            float[] a = hidden[t].clone(), b = replaced.clone();
            Arrays.sort(a);
            Arrays.sort(b);
            assertArrayEquals(a, b, "the same multiset of values");
            moved |= !Arrays.equals(hidden[t], replaced);
        }
        assertTrue(moved);
    }

    @Test
    void noiseDrawsFollowTheirSpecification() {
        // gaussian: java.util.Random(seed).nextGaussian() in row-major order, rounded to float
        java.util.Random random = new java.util.Random(42);
        float[][] g = NoiseDraw.gaussian(42, 3, 5);
        for (float[] row : g) {
            for (float value : row) {
                assertEquals((float) random.nextGaussian(), value);
            }
        }
        // rows do not depend on how many are drawn
        float[][] longer = NoiseDraw.gaussian(42, 10, 5);
        for (int t = 0; t < 3; t++) {
            assertArrayEquals(g[t], longer[t]);
        }
        int[][] p = NoiseDraw.permutations(42, 3, 6);
        int[][] pLonger = NoiseDraw.permutations(42, 8, 6);
        for (int t = 0; t < 3; t++) {
            assertArrayEquals(p[t], pLonger[t]);
        }
        // Fisher-Yates from i = dim-1 down to 1, swapping with nextInt(i + 1)
        random = new java.util.Random(42);
        int[] first = {0, 1, 2, 3, 4, 5};
        for (int i = 5; i > 0; i--) {
            int j = random.nextInt(i + 1);
            int swap = first[i];
            first[i] = first[j];
            first[j] = swap;
        }
        assertArrayEquals(first, p[0]);
    }

    // ------------------------------------------------------------ decoding API

    @Test
    void forwardRejectsOutOfOrderPositions() {
        ReferenceLlama reference = new ReferenceLlama(stories());
        reference.forward(1, 0);
        assertThrows(IllegalArgumentException.class, () -> reference.forward(1, 2));
        reference.reset();
        assertThrows(IllegalArgumentException.class, () -> reference.forward(1, 1));
    }

    @Test
    void greedyGenerationCountsPositionsLikeRunC() {
        ReferenceLlama reference = new ReferenceLlama(stories());
        int[] prompt = {1, 403, 407, 261, 378};
        assertArrayEquals(new int[]{1, 403, 407}, reference.generateGreedy(prompt, 2), "a prompt longer than steps is cut");
        int[] eight = reference.generateGreedy(prompt, 8);
        assertEquals(9, eight.length);
        assertArrayEquals(Arrays.copyOf(Golden.load("stories260K", "once_upon_a_time").allIds(), 9), eight);
    }

    // ------------------------------------------------------------ helpers

    private static void assertMatchesBruteForce(LlamaWeights w, int[] tokens, Manipulation m, String what) {
        float[][] got = new ReferenceLlama(w).logitsAllPositions(tokens, m);
        NaiveLlama naive = new NaiveLlama(w);
        double maxDiff = 0, maxLogit = 0;
        for (int t = 0; t < tokens.length; t++) {
            double[] want = naive.lastLogits(Arrays.copyOf(tokens, t + 1), m);
            maxDiff = Math.max(maxDiff, maxAbsDelta(want, got[t]));
            for (double v : want) {
                maxLogit = Math.max(maxLogit, Math.abs(v));
            }
        }
        float[][] normal = new ReferenceLlama(w).logitsAllPositions(tokens);
        double effect = 0;
        for (int t = 0; t < tokens.length; t++) {
            effect = Math.max(effect, maxAbsDelta(toDouble(normal[t]), got[t]));
        }
        System.out.printf("%-40s max |reference - brute force| = %.2g, max |logit| %.1f, max change from normal %.3g%n",
                what, maxDiff, maxLogit, effect);
        assertTrue(maxDiff <= TOLERANCE, what + ": max diff " + maxDiff);
        if (!(m instanceof Manipulation.None) && !(m instanceof Manipulation.Freeze f && f.k() >= w.config.layers() - 1)
                && !(m instanceof Manipulation.SingleInputFreeze s && s.k() >= w.config.layers() - 1)) {
            assertTrue(effect > 100 * TOLERANCE, what + " changed the logits by only " + effect);
        }
    }

    private static double[] toDouble(float[] x) {
        double[] out = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            out[i] = x[i];
        }
        return out;
    }

    private static double norm(float[] x) {
        double sum = 0;
        for (float v : x) {
            sum += (double) v * v;
        }
        return Math.sqrt(sum);
    }

    private static double cosine(float[] a, float[] b) {
        double dot = 0;
        for (int i = 0; i < a.length; i++) {
            dot += (double) a[i] * b[i];
        }
        return dot / (norm(a) * norm(b));
    }
}
