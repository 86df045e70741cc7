package org.attnskip.export;

import java.nio.ByteBuffer;

/**
 * Columns {@code [first, first + width)} of a row-major [rows][stride] fp32 or fp16 tensor lying in
 * a file (or in a graph's raw bytes), read through a window without copying the tensor: a MatMul
 * weight stored [in][out], or one part of the fused graph's packed q|k|v. It hands the columns out
 * as stored ({@link #asStored}, [rows][width]) or transposed ({@link #transposed}, [width][rows],
 * the [out][in] view the graph builders read); both read a row block at a time.
 */
final class StoredMatrix {
    /** Where the tensor's bytes are: views valid until the next call. */
    @FunctionalInterface
    interface Bytes {
        ByteBuffer at(long position, int length);
    }

    private final Bytes bytes;
    private final long begin;
    /** Named apart from {@link ShapedRows}' own rows, which the views below inherit. */
    private final int storedRows;
    private final int stride;
    private final int first;
    private final int width;
    private final Safetensors.DType type;

    StoredMatrix(Bytes bytes, long begin, int rows, int stride, int first, int width, Safetensors.DType type) {
        if (first < 0 || width < 0 || first + width > stride) {
            throw new IllegalArgumentException("columns " + first + ".." + (first + width) + " of a width " + stride);
        }
        this.bytes = bytes;
        this.begin = begin;
        this.storedRows = rows;
        this.stride = stride;
        this.first = first;
        this.width = width;
        this.type = type;
    }

    /** The whole [rows][stride] tensor. */
    StoredMatrix(Bytes bytes, long begin, int rows, int stride, Safetensors.DType type) {
        this(bytes, begin, rows, stride, 0, stride, type);
    }

    /** The byte offset of value (row, column) of the stored tensor. */
    private long offset(long row, long column) {
        return begin + (row * stride + column) * type.bytes;
    }

    /** [rows][width] as stored. */
    WeightRows asStored() {
        return new ShapedRows(storedRows, width) {
            @Override
            public void read(int r0, int count, float[] into, int at) {
                if (width == stride) {
                    // whole rows are contiguous: as many per view as a window takes
                    long rowBytes = (long) stride * type.bytes;
                    int perView = (int) Math.max(1, MappedWindow.WINDOW_BYTES / Math.max(1, rowBytes));
                    for (int done = 0; done < count; ) {
                        int n = Math.min(count - done, perView);
                        MappedRows.widen(type, bytes.at(offset(r0 + done, 0), (int) (n * rowBytes)), into, at + done * width, n * width);
                        done += n;
                    }
                    return;
                }
                for (int r = 0; r < count; r++) {
                    MappedRows.widen(type, bytes.at(offset(r0 + r, first), width * type.bytes), into, at + r * width, width);
                }
            }
        };
    }

    /** [width][rows]: row c is stored column first + c. A block of rows reads one stretch of every stored row. */
    WeightRows transposed() {
        return new ShapedRows(width, storedRows) {
            private float[] stretch = new float[0];

            @Override
            public void read(int c0, int count, float[] into, int at) {
                if (stretch.length < count) {
                    stretch = new float[count];
                }
                for (int r = 0; r < storedRows; r++) {
                    MappedRows.widen(type, bytes.at(offset(r, first + c0), count * type.bytes), stretch, 0, count);
                    for (int c = 0; c < count; c++) {
                        into[at + c * storedRows + r] = stretch[c];
                    }
                }
            }
        };
    }
}
