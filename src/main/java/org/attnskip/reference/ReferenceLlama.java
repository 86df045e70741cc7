package org.attnskip.reference;

import org.attnskip.export.LlamaConfig;
import org.attnskip.export.LlamaWeights;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;

/**
 * The plain Java forward pass of a Llama-family decoder: the oracle that the ONNX exporter and the
 * graph rewrites are checked against. It follows llama2.c's run.c step by step (rmsnorm, matmul,
 * interleaved RoPE, grouped-query attention, SwiGLU, KV cache) and, like run.c, computes and
 * accumulates in float, in the same order, so that greedy decoding reproduces llama2.c's output.
 * On top of run.c it knows Llama 3 rope scaling, Qwen2's q/k/v biases, and the manipulations of
 * MANIPULATIONS.md ({@link Manipulation}).
 *
 * <p>Rotary embedding: for the pair (2j, 2j+1) of each head (head size hs), the inverse frequency
 * is {@code 1.0f / (float) pow(theta, (float) (2j) / hs)} (then Llama 3 scaling, if any), the angle
 * is the float product {@code pos * invFreq}, and the pair is rotated by (float) cos / sin of it.
 *
 * <p>Not thread-safe: {@link #forward} keeps a KV cache. The analysis methods use their own caches.
 */
public final class ReferenceLlama {
    private final LlamaWeights weights;
    private final LlamaConfig config;
    private final int dim;
    private final int kvDim;
    private final int headSize;
    private final int hiddenDim;
    private final int layerCount;
    private final float[] inverseFrequencies;
    private KvRows cache;

    public ReferenceLlama(LlamaWeights weights) {
        this.weights = weights;
        this.config = weights.config;
        this.dim = config.dim();
        this.kvDim = config.kvDim();
        this.headSize = config.headDim();
        this.hiddenDim = config.hiddenDim();
        this.layerCount = config.layers();
        this.inverseFrequencies = ropeInverseFrequencies(config);
        this.cache = new KvRows(0);
    }

    public LlamaConfig config() {
        return config;
    }

    // ---------------------------------------------------------------- decoding, as run.c does it

    /**
     * One decoding step, like run.c's forward: the logits after token at position pos, attending to
     * the tokens given at positions 0..pos-1 since the last {@link #reset()}. Steps must come in order.
     */
    public float[] forward(int token, int pos) {
        if (pos < 0 || pos > cache.filled) {
            throw new IllegalArgumentException("position " + pos + ": forward() must be called for positions 0, 1, 2, ... in order"
                    + " (the cache holds " + cache.filled + ")");
        }
        cache.ensure(pos + 1);
        float[] x = embed(token);
        for (int l = 0; l < layerCount; l++) {
            attention(l, x, pos, cache);
            feedForward(l, x);
        }
        cache.filled = pos + 1;
        return classify(x);
    }

    /** Forgets the KV cache of {@link #forward}. */
    public void reset() {
        cache = new KvRows(0);
    }

    /**
     * run.c's greedy generation ({@code -t 0 -n steps}): feeds promptIds (BOS first) one by one, then
     * the argmax token (the lowest id on ties), for at most steps positions (prompt tokens included;
     * steps <= 0 or > seq_len means seq_len), and stops early when the next token is BOS.
     *
     * @return the token sequence run.c fed or emitted: promptIds followed by the generated ids, the
     * final BOS excluded; at most steps + 1 ids
     */
    public int[] generateGreedy(int[] promptIds, int steps) {
        if (promptIds.length == 0) {
            throw new IllegalArgumentException("the prompt needs at least one token (BOS)");
        }
        if (steps <= 0 || steps > config.seqLen()) {
            steps = config.seqLen();
        }
        int stopId = config.bosId() >= 0 ? config.bosId() : 1;
        reset();
        List<Integer> sequence = new ArrayList<>();
        int token = promptIds[0];
        sequence.add(token);
        for (int pos = 0; pos < steps; pos++) {
            float[] logits = forward(token, pos);
            int next = pos < promptIds.length - 1 ? promptIds[pos + 1] : argmax(logits);
            if (next == stopId) {
                break;
            }
            sequence.add(next);
            token = next;
        }
        return sequence.stream().mapToInt(Integer::intValue).toArray();
    }

    /** The index of the largest value, the first one on ties (run.c's sample_argmax). */
    public static int argmax(float[] values) {
        int best = 0;
        for (int i = 1; i < values.length; i++) {
            if (values[i] > values[best]) {
                best = i;
            }
        }
        return best;
    }

    // ---------------------------------------------------------------- analysis

    /** The logits at every position of a normal pass: [S][vocab]. */
    public float[][] logitsAllPositions(int[] tokens) {
        return logitsAllPositions(tokens, Manipulation.NONE);
    }

    /**
     * The logits at every position t, where t is scored as if it were the last token of
     * tokens[0..t] under the manipulation: [S][vocab]. For drop, freeze and random this equals
     * token-by-token decoding with a KV cache whose entries for the manipulated layers are what the
     * manipulation makes of each previous token. For random, the noise for position t is row t of
     * {@link NoiseDraw#draw}(noise, seed, S, dim), which is the same row as for any shorter prefix.
     *
     * <p>So row t is what a rewritten graph outputs at its LAST position when given tokens[0..t].
     * A single full-sequence pass of such a graph only matches at its last position for freeze and
     * random (its earlier positions see the manipulation applied to themselves); for drop, switch and
     * the normal model every position matches.
     */
    public float[][] logitsAllPositions(int[] tokens, Manipulation manipulation) {
        validate(manipulation);
        if (manipulation instanceof Manipulation.Drop drop) {
            return causalPass(tokens, drop.layers(), null, null);
        }
        if (manipulation instanceof Manipulation.CompensatedDrop compensated) {
            return compensatedPass(tokens, compensated.maps());
        }
        if (manipulation instanceof Manipulation.Switch switched) {
            return causalPass(tokens, Set.of(), switched, null);
        }
        if (manipulation instanceof Manipulation.Freeze freeze) {
            return frozenPass(tokens, freeze.k());
        }
        if (manipulation instanceof Manipulation.Random random) {
            return randomisedPass(tokens, random);
        }
        if (manipulation instanceof Manipulation.SingleInputFreeze freeze) {
            return singleInputPass(tokens, freeze.k());
        }
        return causalPass(tokens, Set.of(), null, null);
    }

    /**
     * The residual stream of a normal pass: [l][t] is the hidden state of position t at the input
     * of layer l, and [L][t] the output of the last layer (before the final norm). [L+1][S][dim].
     */
    public float[][][] residualStreams(int[] tokens) {
        float[][][] streams = new float[layerCount + 1][tokens.length][];
        causalPass(tokens, Set.of(), null, streams);
        return streams;
    }

    /** Drop, switch and the normal model: one causal pass, every position scored as it goes. */
    private float[][] causalPass(int[] tokens, Set<Integer> dropped, Manipulation.Switch switched, float[][][] streams) {
        KvRows kv = new KvRows(tokens.length);
        float[] switchState = switched == null ? null : switched.state();
        float[][] logits = new float[tokens.length][];
        for (int t = 0; t < tokens.length; t++) {
            float[] x = embed(tokens[t]);
            for (int l = 0; l <= layerCount; l++) {
                if (switched != null && switched.layer() == l && switched.position() == t) {
                    x = switchState.clone();
                }
                if (streams != null) {
                    streams[l][t] = x.clone();
                }
                if (l == layerCount) {
                    break;
                }
                if (!dropped.contains(l)) {
                    attention(l, x, t, kv);
                }
                feedForward(l, x);
            }
            logits[t] = classify(x);
        }
        return logits;
    }

    /** Calibrated drop: in the mapped layers x += map(norm1(x)) instead of attention. */
    private float[][] compensatedPass(int[] tokens, java.util.Map<Integer, AffineMap> maps) {
        KvRows kv = new KvRows(tokens.length);
        float[][] logits = new float[tokens.length][];
        for (int t = 0; t < tokens.length; t++) {
            float[] x = embed(tokens[t]);
            for (int l = 0; l < layerCount; l++) {
                AffineMap map = maps.get(l);
                if (map == null) {
                    attention(l, x, t, kv);
                } else {
                    float[] branch = map.apply(rmsnorm(x, weights.layers[l].attnNorm()));
                    for (int i = 0; i < dim; i++) {
                        x[i] += branch[i];
                    }
                }
                feedForward(l, x);
            }
            logits[t] = classify(x);
        }
        return logits;
    }

    /**
     * Freeze at k. Token t first runs as the last token: normally, with its own K/V in every layer.
     * Then, as it becomes a previous token, its K/V entries in layers >= k are recomputed from its
     * state at the input of layer k.
     */
    private float[][] frozenPass(int[] tokens, int k) {
        KvRows kv = new KvRows(tokens.length);
        float[][] logits = new float[tokens.length][];
        for (int t = 0; t < tokens.length; t++) {
            float[] x = embed(tokens[t]);
            float[] frozen = null;
            for (int l = 0; l < layerCount; l++) {
                if (l == k) {
                    frozen = x.clone();
                }
                attention(l, x, t, kv);
                feedForward(l, x);
            }
            logits[t] = classify(x);
            for (int l = k; l < layerCount; l++) {
                keyValue(l, frozen, t, kv);
            }
        }
        return logits;
    }

    /** Single-input freeze at k: in layers >= k, each position's K/V come from its own state at layer k's input. */
    private float[][] singleInputPass(int[] tokens, int k) {
        KvRows kv = new KvRows(tokens.length);
        float[][] logits = new float[tokens.length][];
        for (int t = 0; t < tokens.length; t++) {
            float[] x = embed(tokens[t]);
            float[] atK = x;
            for (int l = 0; l < layerCount; l++) {
                if (l == k) {
                    atK = x.clone();
                }
                attention(l, x, l >= k ? atK : x, t, kv);
                feedForward(l, x);
            }
            logits[t] = classify(x);
        }
        return logits;
    }

    /**
     * Random at k. Two streams share layers 0..k-1. Token t first runs as the last token: normally,
     * attending in layers >= k to the corrupted stream of the previous tokens. Then its state at the
     * input of layer k is replaced by noise and run through layers k..L-1 as a previous token, which
     * overwrites its K/V entries there.
     */
    private float[][] randomisedPass(int[] tokens, Manipulation.Random random) {
        int k = random.k();
        KvRows kv = new KvRows(tokens.length);
        NoiseDraw.Draw noise = k < layerCount ? NoiseDraw.draw(random.noise(), random.seed(), tokens.length, dim) : null;
        float[][] logits = new float[tokens.length][];
        for (int t = 0; t < tokens.length; t++) {
            float[] x = embed(tokens[t]);
            float[] atK = null;
            for (int l = 0; l < layerCount; l++) {
                if (l == k) {
                    atK = x.clone();
                }
                attention(l, x, t, kv);
                feedForward(l, x);
            }
            logits[t] = classify(x);
            if (atK != null && t < tokens.length - 1) {
                float[] corrupted = noise.replace(t, atK);
                for (int l = k; l < layerCount; l++) {
                    attention(l, corrupted, t, kv);
                    feedForward(l, corrupted);
                }
            }
        }
        return logits;
    }

    private void validate(Manipulation m) {
        if (m instanceof Manipulation.Drop drop) {
            for (int l : drop.layers()) {
                checkLayer(l, layerCount - 1);
            }
        } else if (m instanceof Manipulation.CompensatedDrop compensated) {
            for (var e : compensated.maps().entrySet()) {
                checkLayer(e.getKey(), layerCount - 1);
                if (e.getValue().dim() != dim) {
                    throw new IllegalArgumentException("layer " + e.getKey() + ": map of dim " + e.getValue().dim()
                            + ", the model's dim is " + dim);
                }
            }
        } else if (m instanceof Manipulation.Freeze freeze) {
            checkLayer(freeze.k(), layerCount);
        } else if (m instanceof Manipulation.SingleInputFreeze freeze) {
            checkLayer(freeze.k(), layerCount);
        } else if (m instanceof Manipulation.Random random) {
            checkLayer(random.k(), layerCount);
        } else if (m instanceof Manipulation.Switch switched) {
            checkLayer(switched.layer(), layerCount);
            if (switched.position() < 0) {
                throw new IllegalArgumentException("switch position " + switched.position() + " is negative");
            }
            if (switched.state().length != dim) {
                throw new IllegalArgumentException("switch state has " + switched.state().length + " values, the model's dim is " + dim);
            }
        }
    }

    private void checkLayer(int layer, int max) {
        if (layer < 0 || layer > max) {
            throw new IllegalArgumentException("layer " + layer + " is outside 0.." + max);
        }
    }

    // ---------------------------------------------------------------- the blocks of the model

    private float[] embed(int token) {
        if (token < 0 || token >= config.vocabSize()) {
            throw new IllegalArgumentException("token id " + token + " is outside the vocabulary 0.." + (config.vocabSize() - 1));
        }
        return Arrays.copyOfRange(weights.tokenEmbedding, token * dim, (token + 1) * dim);
    }

    /**
     * x += Wo . attention(norm(x)) for position pos; this position's K/V are written into the cache
     * first and positions 0..pos are attended to.
     */
    private void attention(int layer, float[] x, int pos, KvRows kv) {
        attention(layer, x, x, pos, kv);
    }

    /** As above, with this position's K/V computed from kvSource (the same state as x but for single-input freeze). */
    private void attention(int layer, float[] x, float[] kvSource, int pos, KvRows kv) {
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
    private void keyValue(int layer, float[] x, int pos, KvRows kv) {
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
    private void feedForward(int layer, float[] x) {
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
    private float[] classify(float[] x) {
        float[] normed = rmsnorm(x, weights.finalNorm);
        float[] logits = new float[config.vocabSize()];
        matmul(logits, normed, weights.classifier, null, dim, config.vocabSize());
        return logits;
    }

    private float[] rmsnorm(float[] x, float[] weight) {
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
    private static void matmul(float[] out, float[] x, float[] w, float[] bias, int n, int d) {
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
    private void rope(float[] vec, int size, int pos) {
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

    private static void softmax(float[] x, int size) {
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
    public static float[] ropeInverseFrequencies(LlamaConfig config) {
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
    private final class KvRows {
        final float[][] keys = new float[layerCount][];
        final float[][] values = new float[layerCount][];
        int capacity;
        /** How many positions forward() has written. */
        int filled;

        KvRows(int positions) {
            capacity = positions;
            for (int l = 0; l < layerCount; l++) {
                keys[l] = new float[positions * kvDim];
                values[l] = new float[positions * kvDim];
            }
        }

        void ensure(int positions) {
            if (positions <= capacity) {
                return;
            }
            int grown = Math.max(positions, Math.max(16, capacity * 2));
            for (int l = 0; l < layerCount; l++) {
                keys[l] = Arrays.copyOf(keys[l], grown * kvDim);
                values[l] = Arrays.copyOf(values[l], grown * kvDim);
            }
            capacity = grown;
        }
    }
}
