package org.attnskip.reference;

import java.util.Set;

/**
 * The manipulations of MANIPULATIONS.md ({@link Manipulation}) as passes over the run.c blocks,
 * each scoring every position t as if it were the last token of tokens[0..t] (see
 * {@link ReferenceLlama#logitsAllPositions(int[], Manipulation)}).
 */
final class ManipulatedPasses {
    private final LlamaBlocks b;

    ManipulatedPasses(LlamaBlocks blocks) {
        this.b = blocks;
    }

    float[][] logits(int[] tokens, Manipulation manipulation) {
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

    /** [L+1][S][dim]: the state of every position at the input of every layer, then the last layer's output. */
    float[][][] residualStreams(int[] tokens) {
        float[][][] streams = new float[b.layerCount + 1][tokens.length][];
        causalPass(tokens, Set.of(), null, streams);
        return streams;
    }

    /**
     * Drop, switch and the normal model: one causal pass, every position scored. It runs layer by
     * layer over all positions (position t of a layer needs only positions 0..t of that layer), which
     * gives each position the same sums as running it token by token and reads each weight once.
     */
    private float[][] causalPass(int[] tokens, Set<Integer> dropped, Manipulation.Switch switched, float[][][] streams) {
        LlamaBlocks.KvRows kv = b.rows(tokens.length);
        float[][] xs = new float[tokens.length][];
        for (int t = 0; t < tokens.length; t++) {
            xs[t] = b.embed(tokens[t]);
        }
        for (int l = 0; l <= b.layerCount; l++) {
            if (switched != null && switched.layer() == l && switched.position() < tokens.length) {
                xs[switched.position()] = switched.state();
            }
            if (streams != null) {
                for (int t = 0; t < tokens.length; t++) {
                    streams[l][t] = xs[t].clone();
                }
            }
            if (l == b.layerCount) {
                break;
            }
            if (!dropped.contains(l)) {
                b.attentionAll(l, xs, kv);
            }
            b.feedForwardAll(l, xs);
        }
        return b.classifyAll(xs);
    }

    /** Calibrated drop: in the mapped layers x += map(norm1(x)) instead of attention. */
    private float[][] compensatedPass(int[] tokens, java.util.Map<Integer, AffineMap> maps) {
        LlamaBlocks.KvRows kv = b.rows(tokens.length);
        float[][] logits = new float[tokens.length][];
        for (int t = 0; t < tokens.length; t++) {
            float[] x = b.embed(tokens[t]);
            for (int l = 0; l < b.layerCount; l++) {
                AffineMap map = maps.get(l);
                if (map == null) {
                    b.attention(l, x, t, kv);
                } else {
                    float[] branch = map.apply(b.rmsnorm(x, b.attnNorm(l)));
                    for (int i = 0; i < b.dim; i++) {
                        x[i] += branch[i];
                    }
                }
                b.feedForward(l, x);
            }
            logits[t] = b.classify(x);
        }
        return logits;
    }

    /**
     * Freeze at k. Token t first runs as the last token: normally, with its own K/V in every layer.
     * Then, as it becomes a previous token, its K/V entries in layers >= k are recomputed from its
     * state at the input of layer k.
     */
    private float[][] frozenPass(int[] tokens, int k) {
        LlamaBlocks.KvRows kv = b.rows(tokens.length);
        float[][] logits = new float[tokens.length][];
        for (int t = 0; t < tokens.length; t++) {
            float[] x = b.embed(tokens[t]);
            float[] frozen = null;
            for (int l = 0; l < b.layerCount; l++) {
                if (l == k) {
                    frozen = x.clone();
                }
                b.attention(l, x, t, kv);
                b.feedForward(l, x);
            }
            logits[t] = b.classify(x);
            for (int l = k; l < b.layerCount; l++) {
                b.keyValue(l, frozen, t, kv);
            }
        }
        return logits;
    }

    /** Single-input freeze at k: in layers >= k, each position's K/V come from its own state at layer k's input. */
    private float[][] singleInputPass(int[] tokens, int k) {
        LlamaBlocks.KvRows kv = b.rows(tokens.length);
        float[][] logits = new float[tokens.length][];
        for (int t = 0; t < tokens.length; t++) {
            float[] x = b.embed(tokens[t]);
            float[] atK = x;
            for (int l = 0; l < b.layerCount; l++) {
                if (l == k) {
                    atK = x.clone();
                }
                b.attention(l, x, l >= k ? atK : x, t, kv);
                b.feedForward(l, x);
            }
            logits[t] = b.classify(x);
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
        LlamaBlocks.KvRows kv = b.rows(tokens.length);
        NoiseDraw.Draw noise = k < b.layerCount ? NoiseDraw.draw(random.noise(), random.seed(), tokens.length, b.dim) : null;
        float[][] logits = new float[tokens.length][];
        for (int t = 0; t < tokens.length; t++) {
            float[] x = b.embed(tokens[t]);
            float[] atK = null;
            for (int l = 0; l < b.layerCount; l++) {
                if (l == k) {
                    atK = x.clone();
                }
                b.attention(l, x, t, kv);
                b.feedForward(l, x);
            }
            logits[t] = b.classify(x);
            if (atK != null && t < tokens.length - 1) {
                float[] corrupted = noise.replace(t, atK);
                for (int l = k; l < b.layerCount; l++) {
                    b.attention(l, corrupted, t, kv);
                    b.feedForward(l, corrupted);
                }
            }
        }
        return logits;
    }

    private void validate(Manipulation m) {
        if (m instanceof Manipulation.Drop drop) {
            for (int l : drop.layers()) {
                checkLayer(l, b.layerCount - 1);
            }
        } else if (m instanceof Manipulation.CompensatedDrop compensated) {
            for (var e : compensated.maps().entrySet()) {
                checkLayer(e.getKey(), b.layerCount - 1);
                if (e.getValue().dim() != b.dim) {
                    throw new IllegalArgumentException("layer " + e.getKey() + ": map of dim " + e.getValue().dim()
                            + ", the model's dim is " + b.dim);
                }
            }
        } else if (m instanceof Manipulation.Freeze freeze) {
            checkLayer(freeze.k(), b.layerCount);
        } else if (m instanceof Manipulation.SingleInputFreeze freeze) {
            checkLayer(freeze.k(), b.layerCount);
        } else if (m instanceof Manipulation.Random random) {
            checkLayer(random.k(), b.layerCount);
        } else if (m instanceof Manipulation.Switch switched) {
            checkLayer(switched.layer(), b.layerCount);
            if (switched.position() < 0) {
                throw new IllegalArgumentException("switch position " + switched.position() + " is negative");
            }
            if (switched.state().length != b.dim) {
                throw new IllegalArgumentException("switch state has " + switched.state().length + " values, the model's dim is " + b.dim);
            }
        }
    }

    private void checkLayer(int layer, int max) {
        if (layer < 0 || layer > max) {
            throw new IllegalArgumentException("layer " + layer + " is outside 0.." + max);
        }
    }
}
