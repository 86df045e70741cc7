package org.attnskip.export;

import org.attnskip.onnx.Half;

import java.nio.ByteBuffer;
import java.util.function.IntUnaryOperator;

/**
 * A [rows][cols] tensor stored row-major at a file offset in fp32, fp16 or bf16, widened to fp32
 * row block by row block through a {@link MappedWindow}. Rows can be read in any order; a row
 * order maps each row asked for to the row stored (the rotary permutation of a Hugging Face q/k
 * projection).
 */
final class MappedRows extends ShapedRows {
    private final MappedWindow window;
    private final long begin;
    private final Safetensors.DType type;
    private final IntUnaryOperator storedRow;

    MappedRows(MappedWindow window, long begin, int rows, int cols, Safetensors.DType type, IntUnaryOperator storedRow) {
        super(rows, cols);
        this.window = window;
        this.begin = begin;
        this.type = type;
        this.storedRow = storedRow;
    }

    /** The rows in stored order. */
    MappedRows(MappedWindow window, long begin, int rows, int cols, Safetensors.DType type) {
        this(window, begin, rows, cols, type, null);
    }

    @Override
    public void read(int first, int count, float[] into, int at) {
        long rowBytes = (long) cols * type.bytes;
        if (storedRow != null) {
            for (int r = 0; r < count; r++) {
                ByteBuffer row = window.at(begin + storedRow.applyAsInt(first + r) * rowBytes, (int) rowBytes);
                widen(type, row, into, at + r * cols, cols);
            }
            return;
        }
        int perWindow = (int) Math.max(1, MappedWindow.WINDOW_BYTES / Math.max(1, rowBytes));
        for (int done = 0; done < count; ) {
            int n = Math.min(count - done, perWindow);
            ByteBuffer bytes = window.at(begin + (first + done) * rowBytes, (int) (n * rowBytes));
            widen(type, bytes, into, at + done * cols, n * cols);
            done += n;
        }
    }

    /** n values from bytes, widened to fp32 into out from index at. */
    static void widen(Safetensors.DType type, ByteBuffer bytes, float[] out, int at, int n) {
        switch (type) {
            case F32 -> bytes.asFloatBuffer().get(out, at, n);
            case F16 -> {
                for (int i = 0; i < n; i++) {
                    out[at + i] = Half.toFloat(bytes.getShort(2 * i));
                }
            }
            case BF16 -> {
                // bf16 is the top half of an fp32, so widening is a shift
                for (int i = 0; i < n; i++) {
                    out[at + i] = Float.intBitsToFloat((bytes.getShort(2 * i) & 0xffff) << 16);
                }
            }
        }
    }
}
