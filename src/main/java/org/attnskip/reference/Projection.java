package org.attnskip.reference;

import org.attnskip.export.LlamaWeightSource;
import org.attnskip.export.LlamaWeights;
import org.attnskip.export.WeightPart;
import org.attnskip.export.WeightRows;

import java.util.function.Supplier;

/**
 * y = W x (+ b) for a weight W [out][in], as run.c's matmul computes it: each y[i] a float sum
 * over j in order, starting from 0, plus the bias at the end. Whatever holds W, a vector or a
 * batch of vectors gets bit for bit those sums:
 * <ul>
 *   <li>in memory ({@link LlamaWeights}): run.c's loop over the array;</li>
 *   <li>read [out][in] a row block at a time (a llama2.c checkpoint): each row's dot products;</li>
 *   <li>read as MatMul stores it, [in][out], a row block at a time (an exported directory): row j
 *       adds w[j][i] x[j] to every y[i], so each y[i] still sums over j in order.</li>
 * </ul>
 * Streamed, a batch reads W once for all its vectors, and the heap holds one row block
 * ({@link Scratch}) whatever W's size.
 */
abstract class Projection {
    /** fp32 values per row block read: 8 MB, as the exporter's. */
    static final int BLOCK_VALUES = 1 << 21;

    final int in;
    final int out;
    final float[] bias;

    private Projection(int in, int out, float[] bias) {
        this.in = in;
        this.out = out;
        this.bias = bias;
    }

    /** The row block every streamed projection of one model reads into, grown to the largest block. */
    static final class Scratch {
        private float[] block = new float[0];

        float[] take(int values) {
            if (block.length < values) {
                block = new float[values];
            }
            return block;
        }
    }

    /**
     * The projection of {@code part} (a matrix part, or the embedding as a shared classifier).
     * Sources other than {@link LlamaWeights} are asked for the tensor again at every use, so
     * they must hand out rows in any order (files do).
     */
    static Projection of(LlamaWeightSource source, WeightPart part, int layer, float[] bias, Scratch scratch) {
        int[] shape = part.shape(source.config());
        if (source instanceof LlamaWeights) {
            return new InMemory(source.weight(part, layer).readAll(), shape[1], shape[0], bias);
        }
        if (source.storedTransposed(part, layer) != null) {
            return new StoredInOut(() -> source.storedTransposed(part, layer), shape[1], shape[0], bias, scratch);
        }
        return new StoredOutIn(() -> source.weight(part, layer), shape[1], shape[0], bias, scratch);
    }

    /** ys[t] = W xs[t] (+ b) for every t. */
    abstract float[][] apply(float[][] xs);

    float[] apply(float[] x) {
        return apply(new float[][] {x})[0];
    }

    /** out = W . x (+ bias), W being [d][n] row-major: run.c's matmul. */
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

    private static final class InMemory extends Projection {
        private final float[] w;

        InMemory(float[] w, int in, int out, float[] bias) {
            super(in, out, bias);
            this.w = w;
        }

        @Override
        float[][] apply(float[][] xs) {
            float[][] ys = new float[xs.length][out];
            for (int t = 0; t < xs.length; t++) {
                matmul(ys[t], xs[t], w, bias, in, out);
            }
            return ys;
        }
    }

    /** W read [out][in], rows i .. i+n at a time. */
    private static final class StoredOutIn extends Projection {
        private final Supplier<WeightRows> rows;
        private final Scratch scratch;

        StoredOutIn(Supplier<WeightRows> rows, int in, int out, float[] bias, Scratch scratch) {
            super(in, out, bias);
            this.rows = rows;
            this.scratch = scratch;
        }

        @Override
        float[][] apply(float[][] xs) {
            WeightRows w = rows.get();
            float[][] ys = new float[xs.length][out];
            int perBlock = Math.max(1, Math.min(out, BLOCK_VALUES / Math.max(1, in)));
            float[] block = scratch.take(perBlock * in);
            for (int i0 = 0; i0 < out; i0 += perBlock) {
                int n = Math.min(perBlock, out - i0);
                w.read(i0, n, block, 0);
                for (int t = 0; t < xs.length; t++) {
                    float[] x = xs[t];
                    for (int r = 0; r < n; r++) {
                        float val = 0.0f;
                        int row = r * in;
                        for (int j = 0; j < in; j++) {
                            val += block[row + j] * x[j];
                        }
                        ys[t][i0 + r] = bias == null ? val : val + bias[i0 + r];
                    }
                }
            }
            return ys;
        }
    }

    /** W read as stored for MatMul, [in][out], rows j .. j+n at a time. */
    private static final class StoredInOut extends Projection {
        private final Supplier<WeightRows> rows;
        private final Scratch scratch;

        StoredInOut(Supplier<WeightRows> rows, int in, int out, float[] bias, Scratch scratch) {
            super(in, out, bias);
            this.rows = rows;
            this.scratch = scratch;
        }

        @Override
        float[][] apply(float[][] xs) {
            WeightRows w = rows.get();
            // the sums in progress: after row j, ys[t][i] is run.c's val after its step j
            float[][] ys = new float[xs.length][out];
            int perBlock = Math.max(1, Math.min(in, BLOCK_VALUES / Math.max(1, out)));
            float[] block = scratch.take(perBlock * out);
            for (int j0 = 0; j0 < in; j0 += perBlock) {
                int n = Math.min(perBlock, in - j0);
                w.read(j0, n, block, 0);
                for (int t = 0; t < xs.length; t++) {
                    float[] x = xs[t];
                    float[] y = ys[t];
                    for (int r = 0; r < n; r++) {
                        float xj = x[j0 + r];
                        int row = r * out;
                        for (int i = 0; i < out; i++) {
                            y[i] += block[row + i] * xj;
                        }
                    }
                }
            }
            if (bias != null) {
                for (float[] y : ys) {
                    for (int i = 0; i < out; i++) {
                        y[i] = y[i] + bias[i];
                    }
                }
            }
            return ys;
        }
    }
}
