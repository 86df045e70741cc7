package org.attnskip.export;

/**
 * One weight tensor seen as a [rows][cols] fp32 matrix (a vector is one row) and read a block of
 * rows at a time, so that a tensor of any size passes through a buffer of a few megabytes on its
 * way to the graph: nothing needs the whole tensor in fp32. Readers of files convert the rows from
 * the file's own type (bf16, fp16, fp32, Q8_0) as they are asked for.
 */
public interface WeightRows {
    int rows();

    int cols();

    /**
     * Fills {@code into[at .. at + count * cols)} with rows {@code first .. first + count - 1}. Sources
     * that make their values as a stream (synthetic weights) need the rows in order, each once;
     * readers of files and arrays take any order.
     */
    void read(int first, int count, float[] into, int at);

    /** The whole tensor in one array, for code that keeps weights in memory. */
    default float[] readAll() {
        long n = (long) rows() * cols();
        if (n > Integer.MAX_VALUE - 8) {
            throw new IllegalStateException("a " + rows() + " x " + cols() + " tensor does not fit one Java array");
        }
        float[] all = new float[(int) n];
        if (n > 0) {
            read(0, rows(), all, 0);
        }
        return all;
    }

    /** Rows of an array already in memory. */
    static WeightRows of(float[] values, int rows, int cols) {
        if ((long) rows * cols != values.length) {
            throw new IllegalArgumentException(rows + " x " + cols + " != " + values.length + " values");
        }
        return new ShapedRows(rows, cols) {
            @Override
            public void read(int first, int count, float[] into, int at) {
                System.arraycopy(values, first * cols, into, at, count * cols);
            }

            @Override
            public float[] readAll() {
                return values;
            }
        };
    }

    /** A vector as one row. */
    static WeightRows of(float[] vector) {
        return of(vector, 1, vector.length);
    }

    /**
     * The rows of {@code parts} one after another (all with the same width): the packed q|k|v
     * weight of the fused graph, read part by part, each in order.
     */
    static WeightRows stacked(WeightRows... parts) {
        int cols = parts[0].cols();
        int rows = 0;
        for (WeightRows p : parts) {
            if (p.cols() != cols) {
                throw new IllegalArgumentException("stacked parts differ in width: " + p.cols() + " and " + cols);
            }
            rows = Math.addExact(rows, p.rows());
        }
        int total = rows;
        return new ShapedRows(total, cols) {
            @Override
            public void read(int first, int count, float[] into, int at) {
                int row = first;
                int end = first + count;
                int partStart = 0;
                for (WeightRows p : parts) {
                    int partEnd = partStart + p.rows();
                    if (row < partEnd && row < end) {
                        int n = Math.min(end, partEnd) - row;
                        p.read(row - partStart, n, into, at + (row - first) * cols);
                        row += n;
                    }
                    partStart = partEnd;
                }
            }
        };
    }
}
