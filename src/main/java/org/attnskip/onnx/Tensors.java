package org.attnskip.onnx;

import ai.onnx.proto.OnnxMl.TensorProto;
import ai.onnx.proto.OnnxMl.TensorProto.DataType;
import com.google.protobuf.UnsafeByteOperations;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;

/**
 * Reading and making initializer tensors. ONNX stores raw data little-endian. Made tensors wrap
 * the buffer they were encoded into (never shared or changed after) instead of copying it, which
 * halves an exported weight's footprint.
 */
public final class Tensors {
    /** The most bytes one tensor made here holds (a Java array's and a protobuf ByteString's limit). */
    public static final long MAX_INLINE_BYTES = Integer.MAX_VALUE - 8;
    private Tensors() {
    }

    /** The product of the dims; a negative dim or a product past {@code long} is a bad model. */
    public static long elementCount(TensorProto t) {
        long n = 1;
        for (long d : t.getDimsList()) {
            if (d < 0) {
                throw new BadInputException("tensor '" + t.getName() + "' has a negative dimension " + d);
            }
            try {
                n = Math.multiplyExact(n, d);
            } catch (ArithmeticException e) {
                throw new BadInputException("tensor '" + t.getName() + "' has dims " + t.getDimsList()
                        + " whose product overflows a long");
            }
        }
        return n;
    }

    /** The element count as an array length, refused before anything is allocated when it cannot be one. */
    private static int arrayLength(TensorProto t) {
        long n = elementCount(t);
        if (n > Integer.MAX_VALUE - 8) {
            throw new BadInputException("tensor '" + t.getName() + "' has " + n + " elements, too many to read into memory");
        }
        return (int) n;
    }

    /** Raw bytes must hold exactly n elements: checked before the values' array is allocated. */
    private static ByteBuffer checkedRaw(TensorProto t, Path baseDir, int n, int elementBytes) {
        ByteBuffer raw = rawBytes(t, baseDir);
        if (raw.remaining() != (long) n * elementBytes) {
            throw new BadInputException("tensor '" + t.getName() + "' declares " + n + " elements of "
                    + elementBytes + " bytes but holds " + raw.remaining() + " bytes");
        }
        return raw;
    }

    /** Bytes per element of an ONNX data type, or 0 for types without a fixed size. */
    public static int elementSize(int dataType) {
        DataType type = DataType.forNumber(dataType);
        if (type == null) {
            return 0;
        }
        return switch (type) {
            case FLOAT, INT32, UINT32 -> 4;
            case DOUBLE, INT64, UINT64 -> 8;
            case FLOAT16, BFLOAT16, INT16, UINT16 -> 2;
            case INT8, UINT8, BOOL -> 1;
            default -> 0;
        };
    }

    /** The tensor's values as floats (float, float16, bfloat16, double), reading external data from baseDir. */
    public static float[] floats(TensorProto t, Path baseDir) {
        int n = arrayLength(t);
        DataType type = DataType.forNumber(t.getDataType());
        if (type == DataType.FLOAT && t.getFloatDataCount() == n && n > 0) {
            float[] out = new float[n];
            for (int i = 0; i < n; i++) {
                out[i] = t.getFloatData(i);
            }
            return out;
        }
        if (type == DataType.FLOAT16 && t.getRawData().isEmpty() && !ExternalData.isExternal(t)
                && t.getInt32DataCount() == n) {
            float[] out = new float[n];
            for (int i = 0; i < n; i++) {
                out[i] = Half.toFloat((short) t.getInt32Data(i));
            }
            return out;
        }
        if (type != DataType.FLOAT && type != DataType.DOUBLE && type != DataType.FLOAT16 && type != DataType.BFLOAT16) {
            throw new BadInputException("tensor '" + t.getName() + "' of type " + type + " is not floating point");
        }
        ByteBuffer raw = checkedRaw(t, baseDir, n, elementSize(type.getNumber()));
        float[] out = new float[n];
        switch (type) {
            case FLOAT -> raw.asFloatBuffer().get(out);
            case DOUBLE -> {
                for (int i = 0; i < n; i++) {
                    out[i] = (float) raw.getDouble(8 * i);
                }
            }
            case FLOAT16 -> {
                for (int i = 0; i < n; i++) {
                    out[i] = Half.toFloat(raw.getShort(2 * i));
                }
            }
            case BFLOAT16 -> {
                for (int i = 0; i < n; i++) {
                    out[i] = Float.intBitsToFloat((raw.getShort(2 * i) & 0xffff) << 16);
                }
            }
            default -> throw new BadInputException("tensor '" + t.getName() + "' of type " + type + " is not floating point");
        }
        return out;
    }

    /** The tensor's values as longs (int64 or int32). */
    public static long[] longs(TensorProto t, Path baseDir) {
        int n = arrayLength(t);
        DataType type = DataType.forNumber(t.getDataType());
        if (type != DataType.INT64 && type != DataType.INT32) {
            throw new BadInputException("tensor '" + t.getName() + "' of type " + type + " is not an integer");
        }
        if (type == DataType.INT64 && t.getInt64DataCount() == n && n > 0) {
            long[] out = new long[n];
            for (int i = 0; i < n; i++) {
                out[i] = t.getInt64Data(i);
            }
            return out;
        }
        if (type == DataType.INT32 && t.getInt32DataCount() == n && n > 0) {
            long[] out = new long[n];
            for (int i = 0; i < n; i++) {
                out[i] = t.getInt32Data(i);
            }
            return out;
        }
        ByteBuffer raw = checkedRaw(t, baseDir, n, elementSize(type.getNumber()));
        long[] out = new long[n];
        switch (type) {
            case INT64 -> raw.asLongBuffer().get(out);
            case INT32 -> {
                for (int i = 0; i < n; i++) {
                    out[i] = raw.getInt(4 * i);
                }
            }
            default -> throw new BadInputException("tensor '" + t.getName() + "' of type " + type + " is not an integer");
        }
        return out;
    }

    private static ByteBuffer rawBytes(TensorProto t, Path baseDir) {
        ByteBuffer raw = ExternalData.isExternal(t)
                ? ExternalData.of(t).read(baseDir, t.getName())
                : t.getRawData().asReadOnlyByteBuffer();
        return raw.order(ByteOrder.LITTLE_ENDIAN);
    }

    public static TensorProto floatTensor(String name, long[] dims, float[] values) {
        ByteBuffer b = ByteBuffer.allocate(4 * values.length).order(ByteOrder.LITTLE_ENDIAN);
        b.asFloatBuffer().put(values);
        return TensorProto.newBuilder().setName(name).setDataType(DataType.FLOAT_VALUE)
                .addAllDims(boxed(dims)).setRawData(UnsafeByteOperations.unsafeWrap(b.array())).build();
    }

    /** float values stored as IEEE half precision. */
    public static TensorProto float16Tensor(String name, long[] dims, float[] values) {
        ByteBuffer b = ByteBuffer.allocate(2 * values.length).order(ByteOrder.LITTLE_ENDIAN);
        for (float v : values) {
            b.putShort(Half.fromFloat(v));
        }
        return TensorProto.newBuilder().setName(name).setDataType(DataType.FLOAT16_VALUE)
                .addAllDims(boxed(dims)).setRawData(UnsafeByteOperations.unsafeWrap(b.array())).build();
    }

    /**
     * A [rows][cols] matrix stored transposed, [cols][rows], as FLOAT or FLOAT16 (MatMul's weight
     * layout). Encoded block by block straight from the source, without a transposed copy of it.
     */
    public static TensorProto transposed(String name, int dataType, float[] rowsCols, int rows, int cols) {
        boolean half = dataType == DataType.FLOAT16_VALUE;
        if (!half && dataType != DataType.FLOAT_VALUE) {
            throw new IllegalArgumentException("transposed tensors are FLOAT or FLOAT16, not " + dataType);
        }
        int size = half ? 2 : 4;
        long bytes = (long) rows * cols * size;
        if ((long) rows * cols != rowsCols.length) {
            throw new IllegalArgumentException(name + ": " + rows + " x " + cols + " != " + rowsCols.length + " values");
        }
        if (bytes > MAX_INLINE_BYTES) {
            throw new BadInputException("tensor '" + name + "' would take " + bytes
                    + " bytes, more than the 2 GB one tensor can hold here");
        }
        ByteBuffer b = ByteBuffer.allocate((int) bytes).order(ByteOrder.LITTLE_ENDIAN);
        final int block = 64; // 64 x 64 values: the source rows of a block stay in cache while it is read
        for (int c0 = 0; c0 < cols; c0 += block) {
            int c1 = Math.min(cols, c0 + block);
            for (int r0 = 0; r0 < rows; r0 += block) {
                int r1 = Math.min(rows, r0 + block);
                for (int c = c0; c < c1; c++) {
                    int at = c * rows;
                    for (int r = r0; r < r1; r++) {
                        float v = rowsCols[r * cols + c];
                        if (half) {
                            b.putShort(2 * (at + r), Half.fromFloat(v));
                        } else {
                            b.putFloat(4 * (at + r), v);
                        }
                    }
                }
            }
        }
        return TensorProto.newBuilder().setName(name).setDataType(dataType)
                .addAllDims(boxed(new long[] {cols, rows})).setRawData(UnsafeByteOperations.unsafeWrap(b.array())).build();
    }

    public static TensorProto longTensor(String name, long[] dims, long... values) {
        ByteBuffer b = ByteBuffer.allocate(8 * values.length).order(ByteOrder.LITTLE_ENDIAN);
        b.asLongBuffer().put(values);
        return TensorProto.newBuilder().setName(name).setDataType(DataType.INT64_VALUE)
                .addAllDims(boxed(dims)).setRawData(UnsafeByteOperations.unsafeWrap(b.array())).build();
    }

    /** An int32 scalar (GroupQueryAttention's lengths are int32). */
    public static TensorProto intScalar(String name, int value) {
        return TensorProto.newBuilder().setName(name).setDataType(DataType.INT32_VALUE).addInt32Data(value).build();
    }

    /** A 1-D int64 tensor, the usual shape/axes/starts argument. */
    public static TensorProto longVector(String name, long... values) {
        return longTensor(name, new long[] {values.length}, values);
    }

    private static Iterable<Long> boxed(long[] dims) {
        java.util.List<Long> l = new java.util.ArrayList<>(dims.length);
        for (long d : dims) {
            l.add(d);
        }
        return l;
    }
}
