package org.attnskip.export;

import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Writes llama2.c checkpoints in the layouts of llama2.c's export.py (legacy v0, v1 fp32, v2 Q8_0),
 * so that tests can round-trip weights through {@link Llama2cCheckpoint}.
 */
public final class Llama2cCheckpointWriter {
    private Llama2cCheckpointWriter() {
    }

    public static void writeV0(LlamaWeights w, Path file) throws IOException {
        LlamaConfig c = w.config;
        try (Out out = new Out(file)) {
            int vocab = c.sharedClassifier() ? c.vocabSize() : -c.vocabSize();
            out.ints(c.dim(), c.hiddenDim(), c.layers(), c.heads(), c.kvHeads(), vocab, c.seqLen());
            out.floats(w.tokenEmbedding);
            for (LlamaWeights.Layer l : w.layers) out.floats(l.attnNorm());
            for (LlamaWeights.Layer l : w.layers) out.floats(l.wq());
            for (LlamaWeights.Layer l : w.layers) out.floats(l.wk());
            for (LlamaWeights.Layer l : w.layers) out.floats(l.wv());
            for (LlamaWeights.Layer l : w.layers) out.floats(l.wo());
            for (LlamaWeights.Layer l : w.layers) out.floats(l.ffnNorm());
            for (LlamaWeights.Layer l : w.layers) out.floats(l.w1());
            for (LlamaWeights.Layer l : w.layers) out.floats(l.w2());
            for (LlamaWeights.Layer l : w.layers) out.floats(l.w3());
            out.floats(w.finalNorm);
            // the legacy rotary tables, [seq_len][head_size/2] of cos then of sin
            int half = c.headDim() / 2;
            float[] cos = new float[c.seqLen() * half];
            float[] sin = new float[c.seqLen() * half];
            for (int t = 0; t < c.seqLen(); t++) {
                for (int j = 0; j < half; j++) {
                    double angle = t / Math.pow(c.ropeTheta(), 2.0 * j / c.headDim());
                    cos[t * half + j] = (float) Math.cos(angle);
                    sin[t * half + j] = (float) Math.sin(angle);
                }
            }
            out.floats(cos);
            out.floats(sin);
            if (!c.sharedClassifier()) out.floats(w.classifier);
        }
    }

    public static void writeV1(LlamaWeights w, Path file) throws IOException {
        LlamaConfig c = w.config;
        try (Out out = new Out(file)) {
            out.header(c, 1, -1);
            writeNorms(w, out);
            out.floats(w.tokenEmbedding);
            for (LlamaWeights.Layer l : w.layers) out.floats(l.wq());
            for (LlamaWeights.Layer l : w.layers) out.floats(l.wk());
            for (LlamaWeights.Layer l : w.layers) out.floats(l.wv());
            for (LlamaWeights.Layer l : w.layers) out.floats(l.wo());
            for (LlamaWeights.Layer l : w.layers) out.floats(l.w1());
            for (LlamaWeights.Layer l : w.layers) out.floats(l.w2());
            for (LlamaWeights.Layer l : w.layers) out.floats(l.w3());
            if (!c.sharedClassifier()) out.floats(w.classifier);
        }
    }

    /**
     * Q8_0 with the requested group size, halved until it divides dim as export.py does.
     * @return the group size used
     */
    public static int writeV2(LlamaWeights w, Path file, int groupSize) throws IOException {
        LlamaConfig c = w.config;
        while (c.dim() % groupSize != 0) {
            groupSize /= 2;
        }
        try (Out out = new Out(file)) {
            out.header(c, 2, groupSize);
            writeNorms(w, out);
            out.q80(w.tokenEmbedding, groupSize);
            for (LlamaWeights.Layer l : w.layers) out.q80(l.wq(), groupSize);
            for (LlamaWeights.Layer l : w.layers) out.q80(l.wk(), groupSize);
            for (LlamaWeights.Layer l : w.layers) out.q80(l.wv(), groupSize);
            for (LlamaWeights.Layer l : w.layers) out.q80(l.wo(), groupSize);
            for (LlamaWeights.Layer l : w.layers) out.q80(l.w1(), groupSize);
            for (LlamaWeights.Layer l : w.layers) out.q80(l.w2(), groupSize);
            for (LlamaWeights.Layer l : w.layers) out.q80(l.w3(), groupSize);
            if (!c.sharedClassifier()) out.q80(w.classifier, groupSize);
        }
        return groupSize;
    }

    /** What Q8_0 makes of w: per group, scale = max|w| / 127, q = round-half-even(w / scale), value q * scale. */
    public static float[] dequantised(float[] w, int groupSize) {
        Quantised q = quantise(w, groupSize);
        float[] out = new float[w.length];
        for (int i = 0; i < w.length; i++) {
            out[i] = q.values[i] * q.scales[i / groupSize];
        }
        return out;
    }

    record Quantised(byte[] values, float[] scales) {
    }

    static Quantised quantise(float[] w, int groupSize) {
        if (w.length % groupSize != 0) {
            throw new IllegalArgumentException(w.length + " values are not a multiple of group size " + groupSize);
        }
        byte[] values = new byte[w.length];
        float[] scales = new float[w.length / groupSize];
        for (int g = 0; g < scales.length; g++) {
            float max = 0;
            for (int i = g * groupSize; i < (g + 1) * groupSize; i++) {
                max = Math.max(max, Math.abs(w[i]));
            }
            float scale = max / 127.0f;
            scales[g] = scale;
            for (int i = g * groupSize; i < (g + 1) * groupSize; i++) {
                values[i] = scale == 0 ? 0 : (byte) Math.rint(w[i] / scale);
            }
        }
        return new Quantised(values, scales);
    }

    private static void writeNorms(LlamaWeights w, Out out) throws IOException {
        for (LlamaWeights.Layer l : w.layers) out.floats(l.attnNorm());
        for (LlamaWeights.Layer l : w.layers) out.floats(l.ffnNorm());
        out.floats(w.finalNorm);
    }

    private static final class Out implements AutoCloseable {
        private final OutputStream stream;

        Out(Path file) throws IOException {
            stream = new BufferedOutputStream(Files.newOutputStream(file));
        }

        /** The 256-byte header of v1 and v2: magic, version, 7 ints, shared byte, [group size], zeros. */
        void header(LlamaConfig c, int version, int groupSize) throws IOException {
            ByteBuffer b = ByteBuffer.allocate(256).order(ByteOrder.LITTLE_ENDIAN);
            b.putInt(Llama2cCheckpoint.MAGIC).putInt(version);
            b.putInt(c.dim()).putInt(c.hiddenDim()).putInt(c.layers()).putInt(c.heads()).putInt(c.kvHeads())
                    .putInt(c.vocabSize()).putInt(c.seqLen());
            b.put((byte) (c.sharedClassifier() ? 1 : 0));
            if (version == 2) {
                b.putInt(groupSize);
            }
            stream.write(b.array());
        }

        void ints(int... values) throws IOException {
            ByteBuffer b = ByteBuffer.allocate(values.length * 4).order(ByteOrder.LITTLE_ENDIAN);
            for (int v : values) b.putInt(v);
            stream.write(b.array());
        }

        void floats(float[] values) throws IOException {
            ByteBuffer b = ByteBuffer.allocate(values.length * 4).order(ByteOrder.LITTLE_ENDIAN);
            for (float v : values) b.putFloat(v);
            stream.write(b.array());
        }

        void q80(float[] w, int groupSize) throws IOException {
            Quantised q = quantise(w, groupSize);
            stream.write(q.values());
            floats(q.scales());
        }

        @Override
        public void close() throws IOException {
            stream.close();
        }
    }
}
