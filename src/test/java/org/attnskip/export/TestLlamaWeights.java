package org.attnskip.export;

import java.util.SplittableRandom;

/** Random-weight models of any shape, for tests. */
public final class TestLlamaWeights {
    private TestLlamaWeights() {
    }

    /** A config in llama2.c's conventions (eps 1e-5, theta 10000, BOS 1, EOS 2) with the given shape. */
    public static LlamaConfig config(int dim, int hiddenDim, int layers, int heads, int kvHeads, int vocab, int seqLen,
                                     boolean sharedClassifier) {
        return config(dim, hiddenDim, layers, heads, kvHeads, vocab, seqLen, sharedClassifier, false);
    }

    /** The same, with Qwen2-style q/k/v biases when {@code qkvBias} is set. */
    public static LlamaConfig config(int dim, int hiddenDim, int layers, int heads, int kvHeads, int vocab, int seqLen,
                                     boolean sharedClassifier, boolean qkvBias) {
        return new LlamaConfig(dim, hiddenDim, layers, heads, kvHeads, vocab, seqLen, 1e-5f, 10000f, null,
                sharedClassifier, qkvBias, 1, 2);
    }

    /**
     * Weights drawn uniformly in [-scale, scale) with scale = 1/sqrt(fan in), norms around 1, and
     * q/k/v biases when the config asks for them.
     */
    public static LlamaWeights random(LlamaConfig c, long seed) {
        SplittableRandom random = new SplittableRandom(seed);
        int d = c.dim(), kv = c.kvDim(), h = c.hiddenDim();
        float[] embedding = uniform(random, c.vocabSize() * d, 1.0);
        LlamaWeights.Layer[] layers = new LlamaWeights.Layer[c.layers()];
        for (int l = 0; l < layers.length; l++) {
            layers[l] = new LlamaWeights.Layer(
                    norm(random, d),
                    uniform(random, d * d, 1 / Math.sqrt(d)), uniform(random, kv * d, 1 / Math.sqrt(d)),
                    uniform(random, kv * d, 1 / Math.sqrt(d)), uniform(random, d * d, 1 / Math.sqrt(d)),
                    c.qkvBias() ? uniform(random, d, 0.5) : null,
                    c.qkvBias() ? uniform(random, kv, 0.5) : null,
                    c.qkvBias() ? uniform(random, kv, 0.5) : null,
                    norm(random, d),
                    uniform(random, h * d, 1 / Math.sqrt(d)), uniform(random, d * h, 1 / Math.sqrt(h)),
                    uniform(random, h * d, 1 / Math.sqrt(d)));
        }
        float[] finalNorm = norm(random, d);
        float[] classifier = c.sharedClassifier() ? embedding : uniform(random, c.vocabSize() * d, 1 / Math.sqrt(d));
        return new LlamaWeights(c, embedding, layers, finalNorm, classifier);
    }

    private static float[] uniform(SplittableRandom random, int n, double scale) {
        float[] out = new float[n];
        for (int i = 0; i < n; i++) {
            out[i] = (float) ((random.nextDouble() * 2 - 1) * scale);
        }
        return out;
    }

    private static float[] norm(SplittableRandom random, int n) {
        float[] out = new float[n];
        for (int i = 0; i < n; i++) {
            out[i] = (float) (0.5 + random.nextDouble());
        }
        return out;
    }
}
