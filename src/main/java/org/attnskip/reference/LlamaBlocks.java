package org.attnskip.reference;

import org.attnskip.export.LlamaConfig;
import org.attnskip.export.LlamaWeightSource;
import org.attnskip.export.LlamaWeights;
import org.attnskip.export.WeightPart;

import java.util.Arrays;

/**
 * The blocks of llama2.c's run.c forward pass (embedding, rmsnorm, matmul, interleaved RoPE,
 * grouped-query attention over a KV cache, SwiGLU, classifier), computed and accumulated in float
 * in run.c's order, plus Llama 3 rope scaling and Qwen2's q/k/v biases. {@link ReferenceLlama}
 * decodes with them; {@link ManipulatedPasses} rearranges them into the manipulations.
 */
final class LlamaBlocks {
    final LlamaConfig config;
    final int dim;
    final int kvDim;
    final int headSize;
    final int hiddenDim;
    final int layerCount;
    private final float[] inverseFrequencies;
    private final LlamaWeightSource source;
    /** The embedding when it is in memory; else rows are read from the source. */
    private final float[] embedding;
    private final Layer[] layers;
    private final float[] finalNorm;
    private final Projection classifier;

    /** One block's weights: the norms in memory, the projections wherever the source holds them. */
    private record Layer(float[] attnNorm, Projection wq, Projection wk, Projection wv, Projection wo,
                         float[] ffnNorm, Projection w1, Projection w2, Projection w3) {
    }

    /**
     * Over any source whose tensors can be read again, rows in any order ({@link LlamaWeights},
     * checkpoint files, exported directories): only the norms and biases are copied out of it.
     */
    LlamaBlocks(LlamaWeightSource weights) {
        this.source = weights;
        this.config = weights.config();
        this.dim = config.dim();
        this.kvDim = config.kvDim();
        this.headSize = config.headDim();
        this.hiddenDim = config.hiddenDim();
        this.layerCount = config.layers();
        this.inverseFrequencies = ropeInverseFrequencies(config);
        this.embedding = weights instanceof LlamaWeights w ? w.tokenEmbedding : null;
        Projection.Scratch scratch = new Projection.Scratch();
        boolean bias = config.qkvBias();
        this.layers = new Layer[layerCount];
        for (int l = 0; l < layerCount; l++) {
            layers[l] = new Layer(vector(WeightPart.ATTN_NORM, l),
                    Projection.of(weights, WeightPart.WQ, l, bias ? vector(WeightPart.BQ, l) : null, scratch),
                    Projection.of(weights, WeightPart.WK, l, bias ? vector(WeightPart.BK, l) : null, scratch),
                    Projection.of(weights, WeightPart.WV, l, bias ? vector(WeightPart.BV, l) : null, scratch),
                    Projection.of(weights, WeightPart.WO, l, null, scratch),
                    vector(WeightPart.FFN_NORM, l),
                    Projection.of(weights, WeightPart.W1, l, null, scratch),
                    Projection.of(weights, WeightPart.W2, l, null, scratch),
                    Projection.of(weights, WeightPart.W3, l, null, scratch));
        }
        this.finalNorm = vector(WeightPart.FINAL_NORM, 0);
        this.classifier = Projection.of(weights, weights.classifierIsEmbedding() ? WeightPart.EMBEDDING : WeightPart.CLASSIFIER,
                0, null, scratch);
    }

    private float[] vector(WeightPart part, int layer) {
        return source.weight(part, layer).readAll();
    }

    /** The attention norm's weight of a layer. */
    float[] attnNorm(int layer) {
        return layers[layer].attnNorm();
    }

    /** An empty cache for every layer with room for {@code positions}. */
    KvRows rows(int positions) {
        return new KvRows(layerCount, kvDim, positions);
    }


    float[] embed(int token) {
        if (token < 0 || token >= config.vocabSize()) {
            throw new IllegalArgumentException("token id " + token + " is outside the vocabulary 0.." + (config.vocabSize() - 1));
        }
        if (embedding != null) {
            return Arrays.copyOfRange(embedding, token * dim, (token + 1) * dim);
        }
        float[] row = new float[dim];
        source.weight(WeightPart.EMBEDDING, 0).read(token, 1, row, 0);
        return row;
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
        Layer w = layers[layer];
        float[] xb = rmsnorm(x, w.attnNorm());
        float[] q = w.wq().apply(xb);
        rope(q, dim, pos);
        keyValue(layer, kvSource, pos, kv);
        float[] projected = w.wo().apply(attend(layer, q, pos, kv));
        for (int i = 0; i < dim; i++) {
            x[i] += projected[i];
        }
    }

    /**
     * {@link #attention} for positions 0 .. S-1 of xs at once, in place: the same sums, but each
     * projection is read once for all positions. Position t attends to positions 0..t.
     */
    void attentionAll(int layer, float[][] xs, KvRows kv) {
        Layer w = layers[layer];
        float[][] xb = new float[xs.length][];
        for (int t = 0; t < xs.length; t++) {
            xb[t] = rmsnorm(xs[t], w.attnNorm());
        }
        float[][] q = w.wq().apply(xb);
        float[][] k = w.wk().apply(xb);
        float[][] v = w.wv().apply(xb);
        for (int t = 0; t < xs.length; t++) {
            rope(q[t], dim, t);
            rope(k[t], kvDim, t);
            System.arraycopy(k[t], 0, kv.keys[layer], t * kvDim, kvDim);
            System.arraycopy(v[t], 0, kv.values[layer], t * kvDim, kvDim);
        }
        float[][] out = new float[xs.length][];
        for (int t = 0; t < xs.length; t++) {
            out[t] = attend(layer, q[t], t, kv);
        }
        float[][] projected = w.wo().apply(out);
        for (int t = 0; t < xs.length; t++) {
            for (int i = 0; i < dim; i++) {
                xs[t][i] += projected[t][i];
            }
        }
    }

    /** Grouped-query attention of query q (rotated) at position pos over the cache's positions 0..pos. */
    private float[] attend(int layer, float[] q, int pos, KvRows kv) {
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
        return out;
    }

    /** Writes layer's K (rotated) and V of hidden state x at position pos into the cache. */
    void keyValue(int layer, float[] x, int pos, KvRows kv) {
        Layer w = layers[layer];
        float[] xb = rmsnorm(x, w.attnNorm());
        float[] k = w.wk().apply(xb);
        float[] v = w.wv().apply(xb);
        rope(k, kvDim, pos);
        System.arraycopy(k, 0, kv.keys[layer], pos * kvDim, kvDim);
        System.arraycopy(v, 0, kv.values[layer], pos * kvDim, kvDim);
    }

    /** x += W2 . (silu(W1 . norm(x)) * (W3 . norm(x))) */
    void feedForward(int layer, float[] x) {
        feedForwardAll(layer, new float[][] {x});
    }

    /** {@link #feedForward} for every vector of xs, each projection read once for all. */
    void feedForwardAll(int layer, float[][] xs) {
        Layer w = layers[layer];
        float[][] xb = new float[xs.length][];
        for (int t = 0; t < xs.length; t++) {
            xb[t] = rmsnorm(xs[t], w.ffnNorm());
        }
        float[][] hb = w.w1().apply(xb);
        float[][] hb2 = w.w3().apply(xb);
        for (int t = 0; t < xs.length; t++) {
            for (int i = 0; i < hiddenDim; i++) {
                float val = hb[t][i];
                val *= (1.0f / (1.0f + (float) Math.exp(-val)));
                val *= hb2[t][i];
                hb[t][i] = val;
            }
        }
        float[][] down = w.w2().apply(hb);
        for (int t = 0; t < xs.length; t++) {
            for (int i = 0; i < dim; i++) {
                xs[t][i] += down[t][i];
            }
        }
    }

    /** The final norm and the classifier. */
    float[] classify(float[] x) {
        return classifyAll(new float[][] {x})[0];
    }

    /** {@link #classify} for every vector of xs, the classifier read once for all. */
    float[][] classifyAll(float[][] xs) {
        float[][] normed = new float[xs.length][];
        for (int t = 0; t < xs.length; t++) {
            normed[t] = rmsnorm(xs[t], finalNorm);
        }
        return classifier.apply(normed);
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
