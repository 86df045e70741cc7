package org.attnskip.export;

import org.attnskip.onnx.BadInputException;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.util.EnumMap;
import java.util.Map;

/**
 * The tensors of an opened llama2.c checkpoint, read when asked for. The file stores each kind of
 * tensor for all layers together (all wq, then all wk, ...), in an order that depends on the
 * version (see {@link Llama2cCheckpoint}); the offsets of every tensor are worked out once from
 * the header. Reads go through positional reads of bounded chunks rather than a mapping, so the
 * pages read never count towards the process's memory once the tensor is converted.
 */
final class Llama2cSource implements LlamaWeightSource {
    private static final int CHUNK = 1 << 20;

    private enum Kind { EMBEDDING, ATTN_NORM, WQ, WK, WV, WO, FFN_NORM, W1, W2, W3, FINAL_NORM, CLASSIFIER }

    private final Path bin;
    private final FileChannel channel;
    private final Llama2cCheckpoint.Header h;
    /** Kind -> the byte offset of its tensor in each layer (one entry for the non-layer kinds). */
    private final Map<Kind, long[]> offsets = new EnumMap<>(Kind.class);

    Llama2cSource(Path bin, FileChannel channel, Llama2cCheckpoint.Header h) {
        this.bin = bin;
        this.channel = channel;
        this.h = h;
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
            p.place(Kind.EMBEDDING, 1, vocab * d, false);
            p.place(Kind.ATTN_NORM, nl, d, false);
            placeMatrices(p, nl, d, kv, hid, false);
            p.place(Kind.FFN_NORM, nl, d, false);
            p.placeFfn(nl, d, hid, false);
            p.place(Kind.FINAL_NORM, 1, d, false);
            p.pos += 2L * 4 * h.seqLen() * (h.headSize() / 2); // freq_cis_real, freq_cis_imag: recomputed at run time
        } else {
            p.place(Kind.ATTN_NORM, nl, d, false);
            p.place(Kind.FFN_NORM, nl, d, false);
            p.place(Kind.FINAL_NORM, 1, d, false);
            p.place(Kind.EMBEDDING, 1, vocab * d, q);
            placeMatrices(p, nl, d, kv, hid, q);
            p.placeFfn(nl, d, hid, q);
        }
        if (!h.sharedClassifier()) {
            p.place(Kind.CLASSIFIER, 1, vocab * d, q);
        }
    }

    private static void placeMatrices(Placer p, int nl, long d, long kv, long hid, boolean q) {
        p.place(Kind.WQ, nl, d * d, q);
        p.place(Kind.WK, nl, kv * d, q);
        p.place(Kind.WV, nl, kv * d, q);
        p.place(Kind.WO, nl, d * d, q);
    }

    /** Walks the file in storage order, recording where each tensor starts. */
    private final class Placer {
        long pos;

        Placer(long start) {
            pos = start;
        }

        void place(Kind kind, int count, long values, boolean quantised) {
            long[] at = new long[count];
            for (int i = 0; i < count; i++) {
                at[i] = pos;
                pos += quantised ? values + 4 * (values / h.groupSize()) : 4 * values;
            }
            offsets.put(kind, at);
        }

        void placeFfn(int nl, long d, long hid, boolean q) {
            place(Kind.W1, nl, hid * d, q);
            place(Kind.W2, nl, d * hid, q);
            place(Kind.W3, nl, hid * d, q);
        }
    }

    @Override
    public LlamaConfig config() {
        return h.config();
    }

    @Override
    public float[] tokenEmbedding() {
        return matrix(Kind.EMBEDDING, 0, (long) h.vocabSize() * h.dim());
    }

    @Override
    public LlamaWeights.Layer layer(int i) {
        long d = h.dim();
        long kv = h.kvDim();
        long hid = h.hiddenDim();
        return new LlamaWeights.Layer(
                floats(offsets.get(Kind.ATTN_NORM)[i], d),
                matrix(Kind.WQ, i, d * d), matrix(Kind.WK, i, kv * d), matrix(Kind.WV, i, kv * d),
                matrix(Kind.WO, i, d * d),
                null, null, null,
                floats(offsets.get(Kind.FFN_NORM)[i], d),
                matrix(Kind.W1, i, hid * d), matrix(Kind.W2, i, d * hid), matrix(Kind.W3, i, hid * d));
    }

    @Override
    public float[] finalNorm() {
        return floats(offsets.get(Kind.FINAL_NORM)[0], h.dim());
    }

    @Override
    public boolean classifierIsEmbedding() {
        return h.sharedClassifier();
    }

    @Override
    public float[] classifier() {
        return matrix(Kind.CLASSIFIER, 0, (long) h.vocabSize() * h.dim());
    }

    @Override
    public void close() {
        try {
            channel.close();
        } catch (IOException ignored) {
            // only read from
        }
    }

    /** A weight matrix: fp32 in v0 and v1, int8 values then fp32 group scales in v2. */
    private float[] matrix(Kind kind, int layer, long count) {
        long at = offsets.get(kind)[layer];
        return h.version() == 2 ? q80(at, count, h.groupSize()) : floats(at, count);
    }

    private float[] floats(long position, long count) {
        float[] out = new float[(int) count];
        int done = 0;
        while (done < out.length) {
            int n = Math.min(out.length - done, CHUNK);
            read(position + 4L * done, n * 4).asFloatBuffer().get(out, done, n);
            done += n;
        }
        return out;
    }

    /** count int8 values, then count/groupSize fp32 scales; returns q * scale. */
    private float[] q80(long position, long count, int groupSize) {
        float[] scales = floats(position + count, count / groupSize);
        float[] out = new float[(int) count];
        int done = 0;
        while (done < out.length) {
            int n = Math.min(out.length - done, CHUNK);
            ByteBuffer q = read(position + done, n);
            for (int i = 0; i < n; i++) {
                out[done + i] = q.get(i) * scales[(done + i) / groupSize];
            }
            done += n;
        }
        return out;
    }

    private ByteBuffer read(long position, int length) {
        try {
            return Llama2cCheckpoint.readAt(channel, position, length);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + bin, e);
        } catch (BadInputException e) {
            throw new BadInputException(bin + ": " + e.getMessage(), e);
        }
    }
}
