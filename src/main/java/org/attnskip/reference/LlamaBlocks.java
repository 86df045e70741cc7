package org.attnskip.reference;

import org.attnskip.export.LlamaConfig;
import org.attnskip.export.LlamaWeights;

import java.util.Arrays;

/**
 * The blocks of llama2.c's run.c forward pass (embedding, rmsnorm, matmul, interleaved RoPE,
 * grouped-query attention over a KV cache, SwiGLU, classifier), computed and accumulated in float
 * in run.c's order, plus Llama 3 rope scaling and Qwen2's q/k/v biases. {@link ReferenceLlama}
 * decodes with them; {@link ManipulatedPasses} rearranges them into the manipulations.
 */
final class LlamaBlocks {
    final LlamaWeights weights;
    final LlamaConfig config;
    final int dim;
    final int kvDim;
    final int headSize;
    final int hiddenDim;
    final int layerCount;
    private final float[] inverseFrequencies;

    LlamaBlocks(LlamaWeights weights) {
        this.weights = weights;
        this.config = weights.config;
        this.dim = config.dim();
        this.kvDim = config.kvDim();
        this.headSize = config.headDim();
        this.hiddenDim = config.hiddenDim();
        this.layerCount = config.layers();
        this.inverseFrequencies = ropeInverseFrequencies(config);
    }

    /** An empty cache for every layer with room for {@code positions}. */
    KvRows rows(int positions) {
        return new KvRows(layerCount, kvDim, positions);
    }


    float[] embed(int token) {
        if (token < 0 || token >= config.vocabSize()) {
            throw new IllegalArgumentException("token id " + token + " is outside the vocabulary 0.." + (config.vocabSize() - 1));
        }
        return Arrays.copyOfRange(weights.tokenEmbedding, token * dim, (token + 1) * dim);
    }

    /**
     * x += Wo . attention(norm(x)) for position pos; this position's K/V are written into the cache
     * first and positions 0..pos are attended to.
     */
    void attention(int layer, float[] x, int pos, KvRows kv) {
        attention(layer, x, x, pos, kv);
    }

    /** As above, with this position's K/V computed from kvSource (the same state as x but for single-input freeze). */
    void attention(int layer, float[] x, float[] kvSource, int pos, KvRows kv) {
        LlamaWeights.Layer w = weights.layers[layer];
        float[] xb = rmsnorm(x, w.attnNorm());
        float[] q = new float[dim];
        matmul(q, xb, w.wq(), w.bq(), dim, dim);
        rope(q, dim, pos);
        keyValue(layer, kvSource, pos, kv);

        float[] keys = kv.keys[layer];
        float[] values = kv.values[layer];
        int kvGroup = config.heads() / config.kvHeads();
        float scale = (float) Math.sqrt(headSize);
        float[] out = new float[dim];
        float[] att = new float[pos + 1];
        for (int h = 0; h < config.heads(); h++) {
            int qOffset = h * headSize;
            int kvOffset = (h / kvGroup) * headSize;
            for (int t = 0; t <= pos; t++) {
                int kOffset = t * kvDim + kvOffset;
                float score = 0.0f;
                for (int i = 0; i < headSize; i++) {
                    score += q[qOffset + i] * keys[kOffset + i];
                }
                att[t] = score / scale;
            }
            softmax(att, pos + 1);
            for (int t = 0; t <= pos; t++) {
                int vOffset = t * kvDim + kvOffset;
                float a = att[t];
                for (int i = 0; i < headSize; i++) {
                    out[qOffset + i] += a * values[vOffset + i];
                }
            }
        }
        float[] projected = new float[dim];
        matmul(projected, out, w.wo(), null, dim, dim);
        for (int i = 0; i < dim; i++) {
            x[i] += projected[i];
        }
    }

    /** Writes layer's K (rotated) and V of hidden state x at position pos into the cache. */
    void keyValue(int layer, float[] x, int pos, KvRows kv) {
        LlamaWeights.Layer w = weights.layers[layer];
        float[] xb = rmsnorm(x, w.attnNorm());
        float[] k = new float[kvDim];
        float[] v = new float[kvDim];
        matmul(k, xb, w.wk(), w.bk(), dim, kvDim);
        matmul(v, xb, w.wv(), w.bv(), dim, kvDim);
        rope(k, kvDim, pos);
        System.arraycopy(k, 0, kv.keys[layer], pos * kvDim, kvDim);
        System.arraycopy(v, 0, kv.values[layer], pos * kvDim, kvDim);
    }

    /** x += W2 . (silu(W1 . norm(x)) * (W3 . norm(x))) */
    void feedForward(int layer, float[] x) {
        LlamaWeights.Layer w = weights.layers[layer];
        float[] xb = rmsnorm(x, w.ffnNorm());
        float[] hb = new float[hiddenDim];
        float[] hb2 = new float[hiddenDim];
        matmul(hb, xb, w.w1(), null, dim, hiddenDim);
        matmul(hb2, xb, w.w3(), null, dim, hiddenDim);
        for (int i = 0; i < hiddenDim; i++) {
            float val = hb[i];
            val *= (1.0f / (1.0f + (float) Math.exp(-val)));
            val *= hb2[i];
            hb[i] = val;
        }
        float[] down = new float[dim];
        matmul(down, hb, w.w2(), null, hiddenDim, dim);
        for (int i = 0; i < dim; i++) {
            x[i] += down[i];
        }
    }

    /** The final norm and the classifier. */
    float[] classify(float[] x) {
        float[] normed = rmsnorm(x, weights.finalNorm);
        float[] logits = new float[config.vocabSize()];
        matmul(logits, normed, weights.classifier, null, dim, config.vocabSize());
        return logits;
    }

    float[] rmsnorm(float[] x, float[] weight) {
        float ss = 0.0f;
        for (float v : x) {
            ss += v * v;
        }
        ss /= x.length;
        ss += config.normEps();
        ss = 1.0f / (float) Math.sqrt(ss);
        float[] out = new float[x.length];
        for (int j = 0; j < x.length; j++) {
            out[j] = weight[j] * (ss * x[j]);
        }
        return out;
    }

    /** out = W . x (+ bias), W being [d][n] row-major. */
    static void matmul(float[] out, float[] x, float[] w, float[] bias, int n, int d) {
        for (int i = 0; i < d; i++) {
            float val = 0.0f;
            int row = i * n;
            for (int j = 0; j < n; j++) {
                val += w[row + j] * x[j];
            }
            out[i] = bias == null ? val : val + bias[i];
        }
    }

    /** Rotates the pairs (2j, 2j+1) of every head of vec[0..size) by the angles of position pos. */
    void rope(float[] vec, int size, int pos) {
        for (int i = 0; i < size; i += 2) {
            float angle = pos * inverseFrequencies[(i % headSize) / 2];
            float cos = (float) Math.cos(angle);
            float sin = (float) Math.sin(angle);
            float v0 = vec[i];
            float v1 = vec[i + 1];
            vec[i] = v0 * cos - v1 * sin;
            vec[i + 1] = v0 * sin + v1 * cos;
        }
    }

    static void softmax(float[] x, int size) {
        float max = x[0];
        for (int i = 1; i < size; i++) {
            if (x[i] > max) {
                max = x[i];
            }
        }
        float sum = 0.0f;
        for (int i = 0; i < size; i++) {
            x[i] = (float) Math.exp(x[i] - max);
            sum += x[i];
        }
        for (int i = 0; i < size; i++) {
            x[i] /= sum;
        }
    }

    /**
     * The rotary inverse frequency of each pair j of a head: 1 / theta^(2j / headSize) in float as
     * run.c computes it, then Llama 3's rope scaling when the config has it (long wavelengths divided
     * by factor, short ones kept, the band between interpolated smoothly).
     */
    static float[] ropeInverseFrequencies(LlamaConfig config) {
        int headSize = config.headDim();
        float[] inv = new float[headSize / 2];
        for (int j = 0; j < inv.length; j++) {
            inv[j] = 1.0f / (float) Math.pow(config.ropeTheta(), (2 * j) / (float) headSize);
        }
        LlamaConfig.RopeScaling scaling = config.ropeScaling();
        if (scaling != null) {
            double oldContext = scaling.originalMaxPositionEmbeddings();
            double lowFreqWavelength = oldContext / scaling.lowFreqFactor();
            double highFreqWavelength = oldContext / scaling.highFreqFactor();
            for (int j = 0; j < inv.length; j++) {
                double wavelength = 2 * Math.PI / inv[j];
                if (wavelength > lowFreqWavelength) {
                    inv[j] = (float) (inv[j] / scaling.factor());
                } else if (wavelength >= highFreqWavelength) {
                    double smooth = (oldContext / wavelength - scaling.lowFreqFactor())
                            / (scaling.highFreqFactor() - scaling.lowFreqFactor());
                    inv[j] = (float) ((1 - smooth) * inv[j] / scaling.factor() + smooth * inv[j]);
                }
            }
        }
        return inv;
    }

    /** Keys (already rotated) and values per layer, [position][kvDim] row-major, growing on demand. */
    static final class KvRows {
        final float[][] keys;
        final float[][] values;
        private final int kvDim;
        int capacity;
        /** How many positions forward() has written. */
        int filled;

        KvRows(int layers, int kvDim, int positions) {
            this.kvDim = kvDim;
            keys = new float[layers][];
            values = new float[layers][];
            capacity = positions;
            for (int l = 0; l < layers; l++) {
                keys[l] = new float[positions * kvDim];
                values[l] = new float[positions * kvDim];
            }
        }

        void ensure(int positions) {
            if (positions <= capacity) {
                return;
            }
            int grown = Math.max(positions, Math.max(16, capacity * 2));
            for (int l = 0; l < keys.length; l++) {
                keys[l] = Arrays.copyOf(keys[l], grown * kvDim);
                values[l] = Arrays.copyOf(values[l], grown * kvDim);
            }
            capacity = grown;
        }
    }
}
