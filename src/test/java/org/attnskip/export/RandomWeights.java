package org.attnskip.export;

import java.util.Random;

/** Seeded random weights of any shape, scaled so that activations stay of order one. */
public final class RandomWeights {
    private RandomWeights() {
    }

    public static LlamaConfig config(int dim, int hidden, int layers, int heads, int kvHeads, int vocab, int seqLen,
                              boolean shared, boolean bias) {
        return new LlamaConfig(dim, hidden, layers, heads, kvHeads, vocab, seqLen, 1e-5f, 10000f, null,
                shared, bias, 1, 2);
    }

    public static LlamaWeights of(LlamaConfig c, long seed) {
        Random r = new Random(seed);
        int kvDim = c.kvDim();
        LlamaWeights.Layer[] layers = new LlamaWeights.Layer[c.layers()];
        for (int i = 0; i < layers.length; i++) {
            layers[i] = new LlamaWeights.Layer(
                    norm(r, c.dim()),
                    matrix(r, c.dim(), c.dim()), matrix(r, kvDim, c.dim()), matrix(r, kvDim, c.dim()), matrix(r, c.dim(), c.dim()),
                    c.qkvBias() ? vector(r, c.dim(), 0.1f) : null,
                    c.qkvBias() ? vector(r, kvDim, 0.1f) : null,
                    c.qkvBias() ? vector(r, kvDim, 0.1f) : null,
                    norm(r, c.dim()),
                    matrix(r, c.hiddenDim(), c.dim()), matrix(r, c.dim(), c.hiddenDim()), matrix(r, c.hiddenDim(), c.dim()));
        }
        float[] embedding = vector(r, c.vocabSize() * c.dim(), 1f);
        float[] classifier = c.sharedClassifier() ? embedding : matrix(r, c.vocabSize(), c.dim());
        return new LlamaWeights(c, embedding, layers, norm(r, c.dim()), classifier);
    }

    private static float[] matrix(Random r, int out, int in) {
        return vector(r, out * in, (float) (1.0 / Math.sqrt(in)));
    }

    private static float[] norm(Random r, int n) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = 1f + 0.2f * (float) r.nextGaussian();
        }
        return v;
    }

    private static float[] vector(Random r, int n, float scale) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = scale * (float) r.nextGaussian();
        }
        return v;
    }
}
