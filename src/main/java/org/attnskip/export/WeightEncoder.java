package org.attnskip.export;

import org.attnskip.onnx.ExternalDataWriter;
import org.attnskip.onnx.Half;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * Turns {@link WeightRows} into a tensor's little-endian FLOAT or FLOAT16 bytes a block of rows
 * at a time. As stored, each block is encoded and handed on at once, so a tensor of any size
 * passes through a few megabytes. Transposed (MatMul's [in][out] layout of an [out][in] matrix),
 * a band of source rows fills the same stretch of every output row: the band is encoded into a
 * tile of at most {@link #TILE_BYTES} and each output row's stretch is written at its place, so a
 * transposed tensor too passes through a bounded buffer (source rows are still read once, in
 * order, as synthetic sources need). Buffers are kept for the next tensor: one export allocates them once.
 */
final class WeightEncoder {
    /** fp32 values read per block: 8 MB. */
    private static final int BLOCK_VALUES = 1 << 21;
    /**
     * Encoded bytes of one band of a transposed tensor: each output row gets a stretch of
     * TILE_BYTES / (its row count) bytes per write, 4-16 KB for the 1 B-8 B shapes' matrices.
     */
    private static final int TILE_BYTES = 32 << 20;
    /** Square tiles of the transpose, so the source rows of a tile stay in cache while it is written. */
    private static final int TILE = 64;

    private final boolean half;
    private final int size;
    private final int blockValues;
    private final int tileBytes;
    private float[] block = new float[0];
    private ByteBuffer encoded = ByteBuffer.allocate(0);
    private ByteBuffer tile = ByteBuffer.allocate(0);

    WeightEncoder(ExportDtype dtype) {
        this(dtype, BLOCK_VALUES, TILE_BYTES);
    }

    /** With other block and tile sizes, so that tests cross their edges on small tensors. */
    WeightEncoder(ExportDtype dtype, int blockValues, int tileBytes) {
        this.half = dtype == ExportDtype.FLOAT16;
        this.size = half ? 2 : 4;
        this.blockValues = blockValues;
        this.tileBytes = tileBytes;
    }

    /** Encoded bytes of a tensor of this many values. */
    long bytes(WeightRows w) {
        return (long) w.rows() * w.cols() * size;
    }

    /** The heap this encoder needs at most for a tensor of {@code rows x cols} values, transposed or not. */
    static long heapBytes(long rows, long cols, ExportDtype dtype, boolean transposed) {
        int size = dtype == ExportDtype.FLOAT16 ? 2 : 4;
        long blockValues = Math.max(cols, Math.min(rows * cols, BLOCK_VALUES));
        long tile = transposed ? Math.max(cols * size, Math.min(rows * cols * size, TILE_BYTES)) : 0;
        return blockValues * (4 + size) + tile;
    }

    /** The rows as stored, [rows][cols]. */
    ExternalDataWriter.TensorBytes asStored(WeightRows w) {
        return sink -> {
            int cols = w.cols();
            int perBlock = rowsPerBlock(w);
            for (int r0 = 0; r0 < w.rows(); r0 += perBlock) {
                int n = Math.min(perBlock, w.rows() - r0);
                w.read(r0, n, block, 0);
                sink.write(encode(block, n * cols));
            }
        };
    }

    /** The matrix transposed, [cols][rows]. */
    ExternalDataWriter.TensorBytes transposed(WeightRows w) {
        return sink -> {
            int rows = w.rows();
            int cols = w.cols();
            // source rows per band: the band's tile is [cols][band]
            int band = (int) Math.max(1, Math.min(rows, tileBytes / ((long) cols * size)));
            if (tile.capacity() < band * cols * size) {
                tile = ByteBuffer.allocate(band * cols * size).order(ByteOrder.LITTLE_ENDIAN);
            }
            int perBlock = rowsPerBlock(w);
            for (int b0 = 0; b0 < rows; b0 += band) {
                int bn = Math.min(band, rows - b0);
                for (int r0 = b0; r0 < b0 + bn; r0 += perBlock) {
                    int n = Math.min(perBlock, b0 + bn - r0);
                    w.read(r0, n, block, 0);
                    scatter(n, cols, r0 - b0, bn);
                }
                if (bn == rows) {
                    sink.write(tile.duplicate().position(0).limit(rows * cols * size));
                    continue;
                }
                for (int c = 0; c < cols; c++) {
                    ByteBuffer stretch = tile.duplicate().position(c * bn * size).limit((c + 1) * bn * size);
                    sink.writeAt(((long) c * rows + b0) * size, stretch);
                }
            }
        };
    }

    /** Writes block rows 0..n-1 (band rows at .. at+n-1) into column at.. of every row c of the tile [cols][bn]. */
    private void scatter(int n, int cols, int at, int bn) {
        for (int c0 = 0; c0 < cols; c0 += TILE) {
            int c1 = Math.min(cols, c0 + TILE);
            for (int t0 = 0; t0 < n; t0 += TILE) {
                int t1 = Math.min(n, t0 + TILE);
                for (int c = c0; c < c1; c++) {
                    int base = (c * bn + at) * size;
                    for (int t = t0; t < t1; t++) {
                        float v = block[t * cols + c];
                        if (half) {
                            tile.putShort(base + 2 * t, Half.fromFloat(v));
                        } else {
                            tile.putFloat(base + 4 * t, v);
                        }
                    }
                }
            }
        }
    }

    private int rowsPerBlock(WeightRows w) {
        int perBlock = Math.max(1, blockValues / Math.max(1, w.cols()));
        int values = Math.min(perBlock, w.rows()) * w.cols();
        if (block.length < values) {
            block = new float[values];
        }
        return perBlock;
    }

    private ByteBuffer encode(float[] values, int n) {
        if (encoded.capacity() < n * size) {
            encoded = ByteBuffer.allocate(n * size).order(ByteOrder.LITTLE_ENDIAN);
        }
        encoded.clear();
        if (half) {
            for (int i = 0; i < n; i++) {
                encoded.putShort(Half.fromFloat(values[i]));
            }
        } else {
            encoded.asFloatBuffer().put(values, 0, n);
            encoded.position(4 * n);
        }
        return encoded.flip();
    }
}
