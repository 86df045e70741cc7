package org.attnskip.export;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.util.EnumMap;
import java.util.Map;

/**
 * The tensors of an opened llama2.c checkpoint, read when asked for. The file stores each kind of
 * tensor for all layers together (all wq, then all wk, ...), in an order that depends on the
 * version (see {@link Llama2cCheckpoint}); the offsets of every tensor are worked out once from
 * the header. Tensors are read through mapped windows ({@link MappedWindow}) a block of rows at a
 * time, widened (or dequantised) to fp32 as they are read.
 */
final class Llama2cSource implements LlamaWeightSource {
    private final FileChannel channel;
    private final Llama2cCheckpoint.Header h;
    /** Part -> the byte offset of its tensor in each layer (one entry for the non-layer kinds). */
    private final Map<WeightPart, long[]> offsets = new EnumMap<>(WeightPart.class);
    /** Q8_0 values and their scales are read through windows of their own, so they do not evict each other. */
    private final MappedWindow values;
    private final MappedWindow scales;

    Llama2cSource(Path bin, FileChannel channel, Llama2cCheckpoint.Header h) throws IOException {
        this.channel = channel;
        this.h = h;
        this.values = new MappedWindow(bin, channel);
        this.scales = new MappedWindow(bin, channel);
        locate();
    }

    private void locate() {
        long d = h.dim();
        long kv = h.kvDim();
        long hid = h.hiddenDim();
        long vocab = h.vocabSize();
        int nl = h.layers();
        boolean q = h.version() == 2;
        Placer p = new Placer(h.version() == 0 ? Llama2cCheckpoint.LEGACY_HEADER_BYTES
                : Llama2cCheckpoint.VERSIONED_HEADER_BYTES);
        if (h.version() == 0) {
            p.place(WeightPart.EMBEDDING, 1, vocab * d, false);
            p.place(WeightPart.ATTN_NORM, nl, d, false);
            placeMatrices(p, nl, d, kv, hid, false);
            p.place(WeightPart.FFN_NORM, nl, d, false);
            p.placeFfn(nl, d, hid, false);
            p.place(WeightPart.FINAL_NORM, 1, d, false);
            p.pos += 2L * 4 * h.seqLen() * (h.headSize() / 2); // freq_cis_real, freq_cis_imag: recomputed at run time
        } else {
            p.place(WeightPart.ATTN_NORM, nl, d, false);
            p.place(WeightPart.FFN_NORM, nl, d, false);
            p.place(WeightPart.FINAL_NORM, 1, d, false);
            p.place(WeightPart.EMBEDDING, 1, vocab * d, q);
            placeMatrices(p, nl, d, kv, hid, q);
            p.placeFfn(nl, d, hid, q);
        }
        if (!h.sharedClassifier()) {
            p.place(WeightPart.CLASSIFIER, 1, vocab * d, q);
        }
    }

    private static void placeMatrices(Placer p, int nl, long d, long kv, long hid, boolean q) {
        p.place(WeightPart.WQ, nl, d * d, q);
        p.place(WeightPart.WK, nl, kv * d, q);
        p.place(WeightPart.WV, nl, kv * d, q);
        p.place(WeightPart.WO, nl, d * d, q);
    }

    /** Walks the file in storage order, recording where each tensor starts. */
    private final class Placer {
        long pos;

        Placer(long start) {
            pos = start;
        }

        void place(WeightPart kind, int count, long values, boolean quantised) {
            long[] at = new long[count];
            for (int i = 0; i < count; i++) {
                at[i] = pos;
                pos += quantised ? values + 4 * (values / h.groupSize()) : 4 * values;
            }
            offsets.put(kind, at);
        }

        void placeFfn(int nl, long d, long hid, boolean q) {
            place(WeightPart.W1, nl, hid * d, q);
            place(WeightPart.W2, nl, d * hid, q);
            place(WeightPart.W3, nl, hid * d, q);
        }
    }

    @Override
    public LlamaConfig config() {
        return h.config();
    }

    @Override
    public WeightRows weight(WeightPart part, int layer) {
        int[] shape = part.shape(h.config());
        return switch (part) {
            case ATTN_NORM, FFN_NORM -> floats(offsets.get(part)[layer], shape);
            case FINAL_NORM -> floats(offsets.get(part)[0], shape);
            case EMBEDDING, CLASSIFIER -> matrix(part, 0, shape);
            case WQ, WK, WV, WO, W1, W2, W3 -> matrix(part, layer, shape);
            case BQ, BK, BV -> throw new IllegalArgumentException("llama2.c checkpoints have no " + part);
        };
    }

    @Override
    public boolean classifierIsEmbedding() {
        return h.sharedClassifier();
    }

    @Override
    public void close() {
        values.close();
        scales.close();
        try {
            channel.close();
        } catch (IOException ignored) {
            // only read from
        }
    }

    /** A weight matrix: fp32 in v0 and v1, int8 values then fp32 group scales in v2. */
    private WeightRows matrix(WeightPart part, int layer, int[] shape) {
        long at = offsets.get(part)[layer];
        return h.version() == 2 ? new Q80Rows(at, shape[0], shape[1]) : floats(at, shape);
    }

    private WeightRows floats(long position, int[] shape) {
        return new MappedRows(values, position, shape[0], shape[1], Safetensors.DType.F32);
    }

    /** Q8_0: the tensor's int8 values, then one fp32 scale per group of groupSize values; each value is q * scale. */
    private final class Q80Rows extends ShapedRows {
        private final long position;

        Q80Rows(long position, int rows, int cols) {
            super(rows, cols);
            this.position = position;
        }

        @Override
        public void read(int first, int count, float[] into, int at) {
            int group = h.groupSize();
            long count0 = (long) rows * cols;
            int perWindow = (int) Math.max(1, MappedWindow.WINDOW_BYTES / 2 / cols);
            for (int done = 0; done < count; ) {
                int n = Math.min(count - done, perWindow);
                long firstValue = (long) (first + done) * cols;
                int length = n * cols;
                long firstGroup = firstValue / group;
                int groups = (int) ((firstValue + length - 1) / group - firstGroup + 1);
                ByteBuffer q = values.at(position + firstValue, length);
                ByteBuffer s = scales.at(position + count0 + 4 * firstGroup, 4 * groups);
                for (int i = 0; i < length; i++) {
                    into[at + done * cols + i] = q.get(i) * s.getFloat(4 * (int) ((firstValue + i) / group - firstGroup));
                }
                done += n;
            }
        }
    }
}
