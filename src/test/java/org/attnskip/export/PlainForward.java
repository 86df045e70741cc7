package org.attnskip.export;

/**
 * A test-only forward pass written the way llama2.c's run.c writes it, one token at a time with a
 * KV cache, in fp32. It computes its own rotary angles (no rope scaling) so that it shares nothing
 * with the exporter it checks.
 */
public final class PlainForward {
    private final LlamaWeights w;
    private final LlamaConfig c;
    private final float[][] keyCache;
    private final float[][] valueCache;

    public PlainForward(LlamaWeights w) {
        this.w = w;
        this.c = w.config;
        keyCache = new float[c.layers()][c.seqLen() * c.kvDim()];
        valueCache = new float[c.layers()][c.seqLen() * c.kvDim()];
    }

    public float[] forward(int token, int pos) {
        int dim = c.dim();
        int hs = c.headDim();
        int kvDim = c.kvDim();
        int kvMul = c.heads() / c.kvHeads();
        float[] x = new float[dim];
        System.arraycopy(w.tokenEmbedding, token * dim, x, 0, dim);
        for (int l = 0; l < c.layers(); l++) {
            LlamaWeights.Layer L = w.layers[l];
            float[] xb = rmsnorm(x, L.attnNorm());
            float[] q = matmul(L.wq(), xb, dim, dim);
            float[] k = matmul(L.wk(), xb, kvDim, dim);
            float[] v = matmul(L.wv(), xb, kvDim, dim);
            if (L.bq() != null) {
                add(q, L.bq());
                add(k, L.bk());
                add(v, L.bv());
            }
            rope(q, pos, hs);
            rope(k, pos, hs);
            System.arraycopy(k, 0, keyCache[l], pos * kvDim, kvDim);
            System.arraycopy(v, 0, valueCache[l], pos * kvDim, kvDim);
            float[] att = new float[dim];
            for (int h = 0; h < c.heads(); h++) {
                int kvh = h / kvMul;
                float[] scores = new float[pos + 1];
                for (int t = 0; t <= pos; t++) {
                    float s = 0;
                    for (int i = 0; i < hs; i++) {
                        s += q[h * hs + i] * keyCache[l][t * kvDim + kvh * hs + i];
                    }
                    scores[t] = s / (float) Math.sqrt(hs);
                }
                softmax(scores);
                for (int t = 0; t <= pos; t++) {
                    for (int i = 0; i < hs; i++) {
                        att[h * hs + i] += scores[t] * valueCache[l][t * kvDim + kvh * hs + i];
                    }
                }
            }
            add(x, matmul(L.wo(), att, dim, dim));
            xb = rmsnorm(x, L.ffnNorm());
            float[] h1 = matmul(L.w1(), xb, c.hiddenDim(), dim);
            float[] h3 = matmul(L.w3(), xb, c.hiddenDim(), dim);
            for (int i = 0; i < h1.length; i++) {
                float g = h1[i];
                h1[i] = g * (float) (1.0 / (1.0 + Math.exp(-g))) * h3[i];
            }
            add(x, matmul(L.w2(), h1, dim, c.hiddenDim()));
        }
        return matmul(w.classifier, rmsnorm(x, w.finalNorm), c.vocabSize(), dim);
    }

    private void rope(float[] v, int pos, int hs) {
        for (int i = 0; i < v.length; i += 2) {
            int j = i % hs;
            float freq = (float) (1.0 / Math.pow(c.ropeTheta(), j / (double) hs));
            float angle = pos * freq;
            float cr = (float) Math.cos(angle);
            float ci = (float) Math.sin(angle);
            float v0 = v[i];
            float v1 = v[i + 1];
            v[i] = v0 * cr - v1 * ci;
            v[i + 1] = v0 * ci + v1 * cr;
        }
    }

    private float[] rmsnorm(float[] x, float[] weight) {
        float ss = 0;
        for (float v : x) {
            ss += v * v;
        }
        ss = ss / x.length + c.normEps();
        ss = 1f / (float) Math.sqrt(ss);
        float[] o = new float[x.length];
        for (int i = 0; i < x.length; i++) {
            o[i] = weight[i] * (ss * x[i]);
        }
        return o;
    }

    private static float[] matmul(float[] m, float[] x, int out, int in) {
        float[] y = new float[out];
        for (int o = 0; o < out; o++) {
            float s = 0;
            for (int i = 0; i < in; i++) {
                s += m[o * in + i] * x[i];
            }
            y[o] = s;
        }
        return y;
    }

    private static void add(float[] a, float[] b) {
        for (int i = 0; i < a.length; i++) {
            a[i] += b[i];
        }
    }

    private static void softmax(float[] x) {
        float max = Float.NEGATIVE_INFINITY;
        for (float v : x) {
            max = Math.max(max, v);
        }
        float sum = 0;
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) Math.exp(x[i] - max);
            sum += x[i];
        }
        for (int i = 0; i < x.length; i++) {
            x[i] /= sum;
        }
    }
}
