package org.attnskip.reference;

import org.attnskip.export.LlamaConfig;
import org.attnskip.export.LlamaWeights;

/**
 * A brute-force check of {@link ReferenceLlama}, written independently of it: double precision, no
 * KV cache, every layer applied to the whole sequence at once, and each manipulation applied
 * literally as MANIPULATIONS.md words it, scoring only the last token of the given sequence.
 */
final class NaiveLlama {
    private final LlamaWeights w;
    private final LlamaConfig c;

    NaiveLlama(LlamaWeights weights) {
        this.w = weights;
        this.c = weights.config;
    }

    /** The logits of the last token of tokens under the manipulation. */
    double[] lastLogits(int[] tokens, Manipulation m) {
        double[][][] states = run(tokens, m);
        double[][] top = states[c.layers()];
        return matVec(w.classifier, rmsnorm(top[tokens.length - 1], w.finalNorm), c.vocabSize(), c.dim());
    }

    /** [l][t]: the hidden state at the input of layer l (l = L: the output of the last layer). */
    double[][][] run(int[] tokens, Manipulation m) {
        int n = tokens.length, d = c.dim();
        double[][][] states = new double[c.layers() + 1][][];
        double[][] h = new double[n][d];
        for (int t = 0; t < n; t++) {
            for (int j = 0; j < d; j++) {
                h[t][j] = w.tokenEmbedding[tokens[t] * d + j];
            }
        }
        double[][] frozen = null;
        for (int l = 0; l <= c.layers(); l++) {
            if (m instanceof Manipulation.Random r && r.k() == l) {
                replacePrevious(h, r);
            }
            if (m instanceof Manipulation.Switch s && s.layer() == l && s.position() < n) {
                float[] state = s.state();
                for (int j = 0; j < d; j++) {
                    h[s.position()][j] = state[j];
                }
            }
            if (m instanceof Manipulation.Freeze f && f.k() == l) {
                frozen = copy(h);
            }
            boolean singleInput = m instanceof Manipulation.SingleInputFreeze f && f.k() <= l;
            if (m instanceof Manipulation.SingleInputFreeze f && f.k() == l) {
                frozen = copy(h);
            }
            states[l] = copy(h);
            if (l == c.layers()) {
                break;
            }
            LlamaWeights.Layer layer = w.layers[l];
            boolean dropped = m instanceof Manipulation.Drop drop && drop.layers().contains(l);
            if (!dropped) {
                // previous tokens of a frozen layer give K/V from their state at the input of layer k;
                // with single-input, the last token too
                double[][] kvSource = new double[n][];
                for (int t = 0; t < n; t++) {
                    kvSource[t] = frozen != null && (t < n - 1 || singleInput) ? frozen[t] : h[t];
                }
                double[][] attended = attention(layer, h, kvSource);
                for (int t = 0; t < n; t++) {
                    add(h[t], attended[t]);
                }
            }
            for (int t = 0; t < n; t++) {
                add(h[t], mlp(layer, h[t]));
            }
        }
        return states;
    }

    private double[][] attention(LlamaWeights.Layer layer, double[][] h, double[][] kvSource) {
        int n = h.length, d = c.dim(), kvDim = c.kvDim(), hs = c.headDim();
        double[][] q = new double[n][], k = new double[n][], v = new double[n][];
        for (int t = 0; t < n; t++) {
            double[] xq = rmsnorm(h[t], layer.attnNorm());
            double[] xkv = rmsnorm(kvSource[t], layer.attnNorm());
            q[t] = rotate(plus(matVec(layer.wq(), xq, d, d), layer.bq()), t);
            k[t] = rotate(plus(matVec(layer.wk(), xkv, kvDim, d), layer.bk()), t);
            v[t] = plus(matVec(layer.wv(), xkv, kvDim, d), layer.bv());
        }
        int group = c.heads() / c.kvHeads();
        double[][] out = new double[n][];
        for (int t = 0; t < n; t++) {
            double[] concat = new double[d];
            for (int head = 0; head < c.heads(); head++) {
                int kvHead = head / group;
                double[] weights = new double[t + 1];
                double max = Double.NEGATIVE_INFINITY;
                for (int s = 0; s <= t; s++) {
                    double dot = 0;
                    for (int i = 0; i < hs; i++) {
                        dot += q[t][head * hs + i] * k[s][kvHead * hs + i];
                    }
                    weights[s] = dot / Math.sqrt(hs);
                    max = Math.max(max, weights[s]);
                }
                double sum = 0;
                for (int s = 0; s <= t; s++) {
                    weights[s] = Math.exp(weights[s] - max);
                    sum += weights[s];
                }
                for (int s = 0; s <= t; s++) {
                    for (int i = 0; i < hs; i++) {
                        concat[head * hs + i] += weights[s] / sum * v[s][kvHead * hs + i];
                    }
                }
            }
            out[t] = matVec(layer.wo(), concat, d, d);
        }
        return out;
    }

    private double[] mlp(LlamaWeights.Layer layer, double[] x) {
        int d = c.dim(), hidden = c.hiddenDim();
        double[] xb = rmsnorm(x, layer.ffnNorm());
        double[] gate = matVec(layer.w1(), xb, hidden, d);
        double[] up = matVec(layer.w3(), xb, hidden, d);
        for (int i = 0; i < hidden; i++) {
            gate[i] = gate[i] / (1 + Math.exp(-gate[i])) * up[i];
        }
        return matVec(layer.w2(), gate, d, hidden);
    }

    /** Interleaved rotary embedding: pair (2j, 2j+1) of each head turns by pos * theta^(-2j/hs), Llama 3 scaled. */
    private double[] rotate(double[] x, int pos) {
        int hs = c.headDim();
        double[] out = x.clone();
        for (int head = 0; head < x.length / hs; head++) {
            for (int j = 0; j < hs / 2; j++) {
                double angle = pos * inverseFrequency(j);
                int a = head * hs + 2 * j;
                out[a] = x[a] * Math.cos(angle) - x[a + 1] * Math.sin(angle);
                out[a + 1] = x[a] * Math.sin(angle) + x[a + 1] * Math.cos(angle);
            }
        }
        return out;
    }

    double inverseFrequency(int j) {
        double base = Math.pow(c.ropeTheta(), -2.0 * j / c.headDim());
        LlamaConfig.RopeScaling s = c.ropeScaling();
        if (s == null) {
            return base;
        }
        double wavelength = 2 * Math.PI / base;
        double old = s.originalMaxPositionEmbeddings();
        if (wavelength < old / s.highFreqFactor()) {
            return base;
        }
        if (wavelength > old / s.lowFreqFactor()) {
            return base / s.factor();
        }
        double smooth = (old / wavelength - s.lowFreqFactor()) / (s.highFreqFactor() - s.lowFreqFactor());
        return (1 - smooth) * base / s.factor() + smooth * base;
    }

    /** Rows 0..n-2 replaced with the noise of rows 0..n-2 of the draw for (seed, n, dim). */
    private void replacePrevious(double[][] h, Manipulation.Random r) {
        int n = h.length, d = c.dim();
        float[][] gaussian = NoiseDraw.gaussian(r.seed(), n, d);
        int[][] permutations = NoiseDraw.permutations(r.seed(), n, d);
        for (int t = 0; t < n - 1; t++) {
            double[] x = h[t];
            double[] g = new double[d];
            for (int j = 0; j < d; j++) {
                g[j] = gaussian[t][j];
            }
            double[] replaced = new double[d];
            if (r.noise() instanceof Noise.Gaussian) {
                double scale = norm(x) / norm(g);
                for (int j = 0; j < d; j++) {
                    replaced[j] = g[j] * scale;
                }
            } else if (r.noise() instanceof Noise.Angle angle) {
                double along = dot(g, x) / dot(x, x);
                double[] perp = new double[d];
                for (int j = 0; j < d; j++) {
                    perp[j] = g[j] - along * x[j];
                }
                double a = Math.toRadians(angle.degrees()), perpNorm = norm(perp), xNorm = norm(x);
                for (int j = 0; j < d; j++) {
                    replaced[j] = Math.cos(a) * x[j] + Math.sin(a) * xNorm * perp[j] / perpNorm;
                }
            } else {
                for (int j = 0; j < d; j++) {
                    replaced[j] = x[permutations[t][j]];
                }
            }
            // the replacement enters the model as float, as the reference stores hidden states
            for (int j = 0; j < d; j++) {
                h[t][j] = (float) replaced[j];
            }
        }
    }

    private double[] rmsnorm(double[] x, float[] weight) {
        double ss = dot(x, x) / x.length + c.normEps();
        double[] out = new double[x.length];
        for (int j = 0; j < x.length; j++) {
            out[j] = weight[j] * x[j] / Math.sqrt(ss);
        }
        return out;
    }

    private static double[] matVec(float[] m, double[] x, int rows, int cols) {
        double[] out = new double[rows];
        for (int i = 0; i < rows; i++) {
            double sum = 0;
            for (int j = 0; j < cols; j++) {
                sum += m[i * cols + j] * x[j];
            }
            out[i] = sum;
        }
        return out;
    }

    private static double[] plus(double[] x, float[] bias) {
        if (bias != null) {
            for (int i = 0; i < x.length; i++) {
                x[i] += bias[i];
            }
        }
        return x;
    }

    private static void add(double[] x, double[] y) {
        for (int i = 0; i < x.length; i++) {
            x[i] += y[i];
        }
    }

    private static double dot(double[] a, double[] b) {
        double sum = 0;
        for (int i = 0; i < a.length; i++) {
            sum += a[i] * b[i];
        }
        return sum;
    }

    private static double norm(double[] a) {
        return Math.sqrt(dot(a, a));
    }

    private static double[][] copy(double[][] h) {
        double[][] out = new double[h.length][];
        for (int t = 0; t < h.length; t++) {
            out[t] = h[t].clone();
        }
        return out;
    }
}
