package org.attnskip.probe;

import org.attnskip.export.LlamaWeights;
import org.attnskip.reference.AffineMap;
import org.attnskip.reference.ReferenceLlama;
import org.attnskip.runtime.LogProbs;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.SortedSet;
import java.util.TreeMap;
import java.util.function.Consumer;
import java.util.stream.IntStream;

/**
 * Refines calibrated drop's ridge-fitted maps end to end when the dropped layers are the top block
 * k..L-1. Above layer k every position then runs alone (map, MLP, map, MLP, ..., final norm,
 * classifier: no attention), so the top of the model is a per-token network of the stream entering
 * layer k. Its maps are trained by Adam to minimise the mean KL(original || compensated) of the
 * next-token distributions over the calibration tokens, starting from the ridge fit. The ridge fit
 * matches the stream layer by layer; this matches what the model outputs, which is what the maps
 * are judged by (docs/BENCHMARKS.md, "Calibrated drop against plain drop"). The maps stay per-token
 * affine maps of each layer's own attention norm output, so the rewritten graph and its cost do not
 * change.
 *
 * <p>It needs the weights in Java form (a model directory attnskip export wrote), runs the original
 * model on the reference implementation for the stream entering layer k and the target
 * distributions, and computes the network and its gradient in double precision. Hand-written
 * backpropagation: the network is six kinds of small dense operations and no Java autodiff library
 * is among the project's dependencies.
 */
public final class OutputRefinement {
    /**
     * @param epochs passes over the calibration tokens, 0 for none
     * @param learningRate Adam's step size on the map entries
     * @param batch tokens per step
     * @param seed of the order the tokens are visited in
     */
    public record Settings(int epochs, double learningRate, int batch, long seed) {
        public static final Settings DEFAULT = new Settings(3, 3e-4, 1024, 1);
    }

    private final LlamaWeights w;
    private final int dim;
    private final int hidden;
    private final int vocab;
    private final int first;
    private final int count;
    private final float eps;
    /** Per mapped layer j (layer first + j): M as [in][out] row-major and the bias, in double. */
    private final double[][] m;
    private final double[][] b;

    private OutputRefinement(LlamaWeights w, Map<Integer, AffineMap> maps) {
        this.w = w;
        this.dim = w.config.dim();
        this.hidden = w.config.hiddenDim();
        this.vocab = w.config.vocabSize();
        this.eps = w.config.normEps();
        this.first = maps.keySet().iterator().next();
        this.count = maps.size();
        this.m = new double[count][];
        this.b = new double[count][];
        for (var e : maps.entrySet()) {
            int j = e.getKey() - first;
            AffineMap map = e.getValue();
            m[j] = full(map);
            b[j] = new double[dim];
            for (int o = 0; o < dim; o++) {
                b[j][o] = map.bias()[o];
            }
        }
    }

    /** Whether the layers are exactly the top block k..layerCount-1, the case this refinement handles. */
    public static boolean applies(SortedSet<Integer> layers, int layerCount) {
        return !layers.isEmpty() && layers.last() == layerCount - 1 && layers.last() - layers.first() + 1 == layers.size();
    }

    /**
     * The refined full-rank maps; maps must be the top block ({@link #applies}) and full rank.
     *
     * @param sequences the calibration token sequences, run as the original model on the reference
     */
    public static Map<Integer, AffineMap> refine(LlamaWeights weights, List<int[]> sequences, Map<Integer, AffineMap> maps,
                                                 Settings settings, Consumer<String> progress) {
        if (!applies(new java.util.TreeSet<>(maps.keySet()), weights.config.layers())) {
            throw new IllegalArgumentException("output refinement needs the top block of layers, got " + maps.keySet());
        }
        OutputRefinement r = new OutputRefinement(weights, maps);
        Tokens data = r.originalRun(sequences);
        r.train(data, settings, progress);
        Map<Integer, AffineMap> out = new TreeMap<>();
        for (int j = 0; j < r.count; j++) {
            float[] mf = new float[r.dim * r.dim];
            float[] bf = new float[r.dim];
            for (int i = 0; i < mf.length; i++) {
                mf[i] = (float) r.m[j][i];
            }
            for (int o = 0; o < r.dim; o++) {
                bf[o] = (float) r.b[j][o];
            }
            out.put(r.first + j, new AffineMap(r.dim, mf, null, bf));
        }
        return out;
    }

    /** The mean KL(original || compensated) over the sequences' positions with the maps given, on this network. */
    public static double meanKl(LlamaWeights weights, List<int[]> sequences, Map<Integer, AffineMap> maps) {
        OutputRefinement r = new OutputRefinement(weights, maps);
        Tokens data = r.originalRun(sequences);
        return r.loss(data);
    }

    /** d (mean KL) / d M of layer's map over all the sequences' positions, [in][out] row-major: for the gradient check. */
    static double[] mapGradient(LlamaWeights weights, List<int[]> sequences, Map<Integer, AffineMap> maps, int layer) {
        OutputRefinement r = new OutputRefinement(weights, maps);
        Tokens data = r.originalRun(sequences);
        return r.gradient(data, IntStream.range(0, data.input().length).toArray()).m[layer - r.first];
    }

    /** Per calibration token: the original stream entering the first mapped layer and the original next-token distribution. */
    private record Tokens(double[][] input, float[][] target) {
    }

    private Tokens originalRun(List<int[]> sequences) {
        List<double[][]> inputs = new ArrayList<>();
        List<float[][]> targets = new ArrayList<>();
        for (int s = 0; s < sequences.size(); s++) {
            inputs.add(null);
            targets.add(null);
        }
        IntStream.range(0, sequences.size()).parallel().forEach(s -> {
            float[][][] streams = new ReferenceLlama(w).residualStreams(sequences.get(s));
            int n = sequences.get(s).length;
            double[][] in = new double[n][];
            float[][] target = new float[n][];
            for (int t = 0; t < n; t++) {
                in[t] = DenseMath.toDouble(streams[first][t]);
                double[] p = logits(DenseMath.toDouble(streams[w.config.layers()][t]), new double[dim]);
                DenseMath.softmaxInPlace(p);
                target[t] = new float[vocab];
                for (int v = 0; v < vocab; v++) {
                    target[t][v] = (float) p[v];
                }
            }
            inputs.set(s, in);
            targets.set(s, target);
        });
        return new Tokens(inputs.stream().flatMap(java.util.Arrays::stream).toArray(double[][]::new),
                targets.stream().flatMap(java.util.Arrays::stream).toArray(float[][]::new));
    }

    private void train(Tokens data, Settings s, Consumer<String> progress) {
        int n = data.input().length;
        double[][] m1 = new double[count][dim * dim];
        double[][] m2 = new double[count][dim * dim];
        double[][] b1 = new double[count][dim];
        double[][] b2 = new double[count][dim];
        int[] order = IntStream.range(0, n).toArray();
        Random random = new Random(s.seed());
        long step = 0;
        for (int epoch = 0; epoch < s.epochs(); epoch++) {
            for (int i = n - 1; i > 0; i--) {
                int j = random.nextInt(i + 1);
                int t = order[i];
                order[i] = order[j];
                order[j] = t;
            }
            for (int start = 0; start < n; start += s.batch()) {
                int[] batch = java.util.Arrays.copyOfRange(order, start, Math.min(n, start + s.batch()));
                Gradient g = gradient(data, batch);
                step++;
                for (int j = 0; j < count; j++) {
                    adam(m[j], g.m[j], m1[j], m2[j], step, s.learningRate());
                    adam(b[j], g.b[j], b1[j], b2[j], step, s.learningRate());
                }
            }
            progress.accept("refined the maps against the output, epoch " + (epoch + 1) + " of " + s.epochs()
                    + ": mean KL on the calibration tokens " + String.format(java.util.Locale.ROOT, "%.4f", loss(data)));
        }
    }

    private static void adam(double[] p, double[] g, double[] v1, double[] v2, long t, double lr) {
        double c1 = 1 - Math.pow(0.9, t);
        double c2 = 1 - Math.pow(0.999, t);
        for (int i = 0; i < p.length; i++) {
            v1[i] = 0.9 * v1[i] + 0.1 * g[i];
            v2[i] = 0.999 * v2[i] + 0.001 * g[i] * g[i];
            p[i] -= lr * (v1[i] / c1) / (Math.sqrt(v2[i] / c2) + 1e-8);
        }
    }

    /** Gradient of the batch's mean KL with respect to every map. */
    private record Gradient(double[][] m, double[][] b, double[] loss) {
    }

    private Gradient newGradient() {
        return new Gradient(new double[count][dim * dim], new double[count][dim], new double[1]);
    }

    Gradient gradient(Tokens data, int[] batch) {
        int chunks = Math.min(batch.length, 4 * Runtime.getRuntime().availableProcessors());
        Gradient[] parts = new Gradient[chunks];
        IntStream.range(0, chunks).parallel().forEach(c -> {
            Gradient g = newGradient();
            for (int i = c; i < batch.length; i += chunks) {
                g.loss()[0] += token(data.input()[batch[i]], data.target()[batch[i]], g, 1.0 / batch.length);
            }
            parts[c] = g;
        });
        Gradient sum = parts[0];
        for (int c = 1; c < chunks; c++) {
            for (int j = 0; j < count; j++) {
                DenseMath.add(sum.m[j], parts[c].m[j]);
                DenseMath.add(sum.b[j], parts[c].b[j]);
            }
            sum.loss()[0] += parts[c].loss()[0];
        }
        return sum;
    }

    private double loss(Tokens data) {
        return IntStream.range(0, data.input().length).parallel()
                .mapToDouble(t -> token(data.input()[t], data.target()[t], null, 0)).sum() / data.input().length;
    }

    /** One token's KL; with g non-null, adds scale times its gradient to g. */
    private double token(double[] h0, float[] target, Gradient g, double scale) {
        double[][] hIn = new double[count][];
        double[][] x = new double[count][];
        double[] r1 = new double[count];
        double[][] hMid = new double[count][];
        double[][] u = new double[count][];
        double[] r2 = new double[count];
        double[][] p = new double[count][];
        double[][] gate = new double[count][];
        double[] h = h0.clone();
        for (int j = 0; j < count; j++) {
            LlamaWeights.Layer layer = w.layers[first + j];
            hIn[j] = h.clone();
            r1[j] = rsqrt(h);
            x[j] = DenseMath.scaled(h, layer.attnNorm(), r1[j]);
            double[] mid = b[j].clone();
            for (int i = 0; i < dim; i++) {
                double xi = x[j][i];
                int row = i * dim;
                for (int o = 0; o < dim; o++) {
                    mid[o] += xi * m[j][row + o];
                }
            }
            for (int o = 0; o < dim; o++) {
                mid[o] += h[o];
            }
            hMid[j] = mid;
            r2[j] = rsqrt(mid);
            u[j] = DenseMath.scaled(mid, layer.ffnNorm(), r2[j]);
            p[j] = DenseMath.times(layer.w1(), u[j], hidden, dim);
            gate[j] = DenseMath.times(layer.w3(), u[j], hidden, dim);
            double[] act = new double[hidden];
            for (int k = 0; k < hidden; k++) {
                act[k] = p[j][k] * DenseMath.sigmoid(p[j][k]) * gate[j][k];
            }
            double[] down = DenseMath.times(layer.w2(), act, dim, hidden);
            h = new double[dim];
            for (int o = 0; o < dim; o++) {
                h[o] = mid[o] + down[o];
            }
        }
        double rf = rsqrt(h);
        double[] z = new double[dim];
        double[] logp = LogProbs.logSoftmaxInPlace(logits(h, z));
        double kl = 0;
        for (int v = 0; v < vocab; v++) {
            if (target[v] > 0) {
                kl += target[v] * (Math.log(target[v]) - logp[v]);
            }
        }
        if (g == null) {
            return kl;
        }
        // backward: d KL / d logits = softmax - target
        double[] dz = new double[dim];
        for (int v = 0; v < vocab; v++) {
            double d = (Math.exp(logp[v]) - target[v]) * scale;
            int row = v * dim;
            for (int i = 0; i < dim; i++) {
                dz[i] += d * w.classifier[row + i];
            }
        }
        double[] dh = DenseMath.normBack(h, w.finalNorm, rf, dz);
        for (int j = count - 1; j >= 0; j--) {
            LlamaWeights.Layer layer = w.layers[first + j];
            double[] ds = DenseMath.timesTransposed(layer.w2(), dh, dim, hidden);
            double[] dp = new double[hidden];
            double[] dGate = new double[hidden];
            for (int k = 0; k < hidden; k++) {
                double sg = DenseMath.sigmoid(p[j][k]);
                dp[k] = ds[k] * gate[j][k] * sg * (1 + p[j][k] * (1 - sg));
                dGate[k] = ds[k] * p[j][k] * sg;
            }
            double[] du = DenseMath.timesTransposed(layer.w1(), dp, hidden, dim);
            double[] du3 = DenseMath.timesTransposed(layer.w3(), dGate, hidden, dim);
            for (int i = 0; i < dim; i++) {
                du[i] += du3[i];
            }
            double[] dMid = DenseMath.normBack(hMid[j], layer.ffnNorm(), r2[j], du);
            for (int o = 0; o < dim; o++) {
                dMid[o] += dh[o];
            }
            double[] dx = new double[dim];
            for (int i = 0; i < dim; i++) {
                double xi = x[j][i];
                int row = i * dim;
                double acc = 0;
                for (int o = 0; o < dim; o++) {
                    g.m[j][row + o] += xi * dMid[o];
                    acc += m[j][row + o] * dMid[o];
                }
                dx[i] = acc;
            }
            DenseMath.add(g.b[j], dMid);
            double[] dIn = DenseMath.normBack(hIn[j], layer.attnNorm(), r1[j], dx);
            for (int o = 0; o < dim; o++) {
                dIn[o] += dMid[o];
            }
            dh = dIn;
        }
        return kl;
    }

    /** The classifier's logits of the final-normed h; z receives the normed vector. */
    private double[] logits(double[] h, double[] z) {
        double r = rsqrt(h);
        double[] normed = DenseMath.scaled(h, w.finalNorm, r);
        System.arraycopy(normed, 0, z, 0, dim);
        return DenseMath.times(w.classifier, normed, vocab, dim);
    }

    /** 1 / sqrt(mean(h^2) + eps), as the rmsnorm scales. */
    private double rsqrt(double[] h) {
        double ss = 0;
        for (double v : h) {
            ss += v * v;
        }
        return 1.0 / Math.sqrt(ss / h.length + eps);
    }

    private static double[] full(AffineMap map) {
        if (map.lowRank()) {
            throw new IllegalArgumentException("output refinement trains full-rank maps");
        }
        double[] d = new double[map.first().length];
        for (int i = 0; i < d.length; i++) {
            d[i] = map.first()[i];
        }
        return d;
    }
}
