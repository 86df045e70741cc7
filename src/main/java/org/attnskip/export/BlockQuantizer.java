package org.attnskip.export;

import ai.onnx.proto.OnnxMl.TensorProto;
import ai.onnx.proto.OnnxMl.TensorProto.DataType;
import com.google.protobuf.ByteString;
import org.attnskip.onnx.Tensors;

/**
 * Round-to-nearest block quantization of a weight matrix into the layout of ONNX Runtime's
 * {@code com.microsoft::MatMulNBits} (Y = A B^T with B [N][K] dequantised block by block). Each of
 * the N output rows is cut along K into blocks of {@link #BLOCK_SIZE}; a block has a float scale
 * and a zero point, its codes are q = clamp(round(w / scale) + zp, 0, 2^bits - 1), and the kernel
 * reads w = (q - zp) * scale. The block's range is its min and max widened to include 0, so a zero
 * weight stays exactly zero.
 * <p>
 * Tensors: B uint8 [N, blocks, blockSize * bits / 8] with codes packed low bits first along K;
 * scales float [N * blocks]; zero points uint8 [N * ceil(blocks * bits / 8)], packed the same way.
 * Written by hand: ONNX Runtime's quantizer is Python, and the layout is a few lines.
 */
final class BlockQuantizer {
    /** ONNX Runtime's model builder default for CPU int4. */
    static final int BLOCK_SIZE = 32;

    private BlockQuantizer() {
    }

    /** The three initializers of one quantized matrix, named {@code prefix}_Q{bits}, _scales, _zp. */
    record Quantized(TensorProto b, TensorProto scales, TensorProto zeroPoints, int n, int k, int bits) {
    }

    /** Quantizes W given [n][k] (output rows, input columns). */
    static Quantized quantize(String prefix, float[] nk, int n, int k, int bits) {
        if (bits != 4 && bits != 8) {
            throw new IllegalArgumentException("MatMulNBits bits " + bits + ": 4 or 8 here");
        }
        int blocks = (k + BLOCK_SIZE - 1) / BLOCK_SIZE;
        int blob = BLOCK_SIZE * bits / 8;
        int zpBytesPerRow = (blocks * bits + 7) / 8;
        int qMax = (1 << bits) - 1;
        byte[] packed = new byte[n * blocks * blob];
        byte[] zeroPoints = new byte[n * zpBytesPerRow];
        float[] scales = new float[n * blocks];
        for (int row = 0; row < n; row++) {
            for (int blk = 0; blk < blocks; blk++) {
                int k0 = blk * BLOCK_SIZE;
                int k1 = Math.min(k, k0 + BLOCK_SIZE);
                float lo = 0f;
                float hi = 0f;
                for (int c = k0; c < k1; c++) {
                    lo = Math.min(lo, nk[row * k + c]);
                    hi = Math.max(hi, nk[row * k + c]);
                }
                float scale = hi > lo ? (hi - lo) / qMax : 1f;
                int zp = clamp(Math.round(-lo / scale), qMax);
                scales[row * blocks + blk] = scale;
                putCode(zeroPoints, row * zpBytesPerRow, blk, bits, zp);
                int base = (row * blocks + blk) * blob;
                for (int c = k0; c < k0 + BLOCK_SIZE; c++) {
                    // Past K the block is padding: its code is the zero point, which the kernel never reads.
                    int q = c < k1 ? clamp(Math.round(nk[row * k + c] / scale) + zp, qMax) : zp;
                    putCode(packed, base, c - k0, bits, q);
                }
            }
        }
        return new Quantized(
                uint8(prefix + "_Q" + bits, new long[] {n, blocks, blob}, packed),
                Tensors.floatTensor(prefix + "_scales", new long[] {(long) n * blocks}, scales),
                uint8(prefix + "_zp", new long[] {(long) n * zpBytesPerRow}, zeroPoints),
                n, k, bits);
    }

    private static int clamp(int q, int qMax) {
        return Math.max(0, Math.min(qMax, q));
    }

    /** Code number {@code index} of a packed run starting at byte {@code base}, low bits first. */
    private static void putCode(byte[] bytes, int base, int index, int bits, int code) {
        if (bits == 8) {
            bytes[base + index] = (byte) code;
            return;
        }
        int at = base + index / 2;
        int shift = (index % 2) * 4;
        bytes[at] = (byte) ((bytes[at] & ~(0xF << shift)) | (code << shift));
    }

    private static TensorProto uint8(String name, long[] dims, byte[] values) {
        TensorProto.Builder t = TensorProto.newBuilder().setName(name).setDataType(DataType.UINT8_VALUE)
                .setRawData(ByteString.copyFrom(values));
        for (long d : dims) {
            t.addDims(d);
        }
        return t.build();
    }
}
