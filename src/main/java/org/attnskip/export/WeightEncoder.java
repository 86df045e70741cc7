package org.attnskip.export;

import org.attnskip.onnx.ExternalDataWriter;
import org.attnskip.onnx.Half;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;

/**
 * Turns {@link WeightRows} into a tensor's little-endian FLOAT or FLOAT16 bytes a block of rows
 * at a time. As stored, each block is encoded and handed on at once, so a tensor of any size
 * passes through a few megabytes. Transposed (MatMul's [in][out] layout of an [out][in] matrix),
 * every source row block adds to every output row, so the encoded tensor is gathered in stripes of
 * whole output rows first (the largest tensor's encoded bytes, never its fp32 values) and then
 * handed on stripe by stripe. Buffers are kept for the next tensor: one export allocates them once.
 */
final class WeightEncoder {
    /** fp32 values read per block: 8 MB. */
    private static final int BLOCK_VALUES = 1 << 21;
    /** Bytes of encoded output rows per stripe of a transposed tensor. */
    private static final int STRIPE_BYTES = 32 << 20;
    /** Square tiles of the transpose, so the source rows of a tile stay in cache while it is written. */
    private static final int TILE = 64;

    private final boolean half;
    private final int size;
    private final int blockValues;
    private final int stripeBytes;
    private float[] block = new float[0];
    private ByteBuffer encoded = ByteBuffer.allocate(0);
    private final List<ByteBuffer> stripes = new ArrayList<>();

    WeightEncoder(ExportDtype dtype) {
        this(dtype, BLOCK_VALUES, STRIPE_BYTES);
    }

    /** With other block and stripe sizes, so that tests cross their edges on small tensors. */
    WeightEncoder(ExportDtype dtype, int blockValues, int stripeBytes) {
        this.half = dtype == ExportDtype.FLOAT16;
        this.size = half ? 2 : 4;
        this.blockValues = blockValues;
        this.stripeBytes = stripeBytes;
    }

    /** Encoded bytes of a tensor of this many values. */
    long bytes(WeightRows w) {
        return (long) w.rows() * w.cols() * size;
    }

    /** The heap this encoder needs at most for a tensor of {@code rows x cols} values, transposed or not. */
    static long heapBytes(long rows, long cols, ExportDtype dtype, boolean transposed) {
        int size = dtype == ExportDtype.FLOAT16 ? 2 : 4;
        long blockValues = Math.max(cols, Math.min(rows * cols, BLOCK_VALUES));
        long stripeSlack = transposed ? Math.max(STRIPE_BYTES, rows * size) : 0;
        return blockValues * (4 + size) + (transposed ? rows * cols * size + stripeSlack : 0);
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
            long rowBytes = (long) rows * size;
            int perStripe = (int) Math.max(1, stripeBytes / rowBytes);
            int stripeCount = (cols + perStripe - 1) / perStripe;
            ensureStripes(stripeCount, perStripe * rowBytes);
            int perBlock = rowsPerBlock(w);
            for (int r0 = 0; r0 < rows; r0 += perBlock) {
                int n = Math.min(perBlock, rows - r0);
                w.read(r0, n, block, 0);
                scatter(n, cols, r0, rows, perStripe);
            }
            for (int s = 0; s < stripeCount; s++) {
                int outRows = Math.min(perStripe, cols - s * perStripe);
                ByteBuffer stripe = stripes.get(s).duplicate();
                stripe.position(0).limit((int) (outRows * rowBytes));
                sink.write(stripe);
            }
        };
    }

    /** Writes block rows r0 .. r0+n-1 into column r0.. of every output row c (in stripe c / perStripe). */
    private void scatter(int n, int cols, int r0, int rows, int perStripe) {
        for (int c0 = 0; c0 < cols; c0 += TILE) {
            int c1 = Math.min(cols, c0 + TILE);
            for (int t0 = 0; t0 < n; t0 += TILE) {
                int t1 = Math.min(n, t0 + TILE);
                for (int c = c0; c < c1; c++) {
                    ByteBuffer stripe = stripes.get(c / perStripe);
                    int base = ((c % perStripe) * rows + r0) * size;
                    for (int t = t0; t < t1; t++) {
                        float v = block[t * cols + c];
                        if (half) {
                            stripe.putShort(base + 2 * t, Half.fromFloat(v));
                        } else {
                            stripe.putFloat(base + 4 * t, v);
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

    private void ensureStripes(int count, long bytes) {
        for (int s = 0; s < count; s++) {
            if (s == stripes.size()) {
                stripes.add(ByteBuffer.allocate(0));
            }
            if (stripes.get(s).capacity() < bytes) {
                stripes.set(s, ByteBuffer.allocate((int) bytes).order(ByteOrder.LITTLE_ENDIAN));
            }
        }
    }
}
