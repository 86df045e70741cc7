package org.attnskip.runtime;

import ai.onnxruntime.OnnxJavaType;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;

import java.nio.Buffer;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * The token-side inputs of one sequence's decode steps (batch 1, one token): the [1, 1] ids and
 * positions tensors, made once and rewritten in place before each run, and a direct buffer of ones
 * whose first {@code total} values are each step's attention mask. Integers are int64 or int32 as the
 * graph declares them. Kept by the sequence's {@link InputScratch}, which closes it.
 */
final class StepInputs implements AutoCloseable {
    private final OrtEnvironment env;
    private final ByteBuffer idMemory;
    private final OnnxTensor ids;
    private final boolean intIds;
    private final ByteBuffer positionMemory;
    private final OnnxTensor positions;
    private final boolean intPositions;
    private final boolean intMask;
    private Buffer ones;

    /** @param positionType null when the graph takes no position ids */
    StepInputs(OrtEnvironment env, OnnxJavaType idType, OnnxJavaType positionType, OnnxJavaType maskType)
            throws OrtException {
        this.env = env;
        intIds = idType == OnnxJavaType.INT32;
        intPositions = positionType == OnnxJavaType.INT32;
        intMask = maskType == OnnxJavaType.INT32;
        idMemory = direct(8);
        positionMemory = positionType != null ? direct(8) : null;
        ids = scalar(idMemory, intIds);
        OnnxTensor made = null;
        try {
            if (positionMemory != null) {
                made = scalar(positionMemory, intPositions);
            }
        } catch (OrtException | RuntimeException e) {
            ids.close();
            throw e;
        }
        positions = made;
    }

    private static ByteBuffer direct(int bytes) {
        return ByteBuffer.allocateDirect(bytes).order(ByteOrder.nativeOrder());
    }

    /** A [1, 1] tensor over {@code memory}, which the tensor reads in place. */
    private OnnxTensor scalar(ByteBuffer memory, boolean int32) throws OrtException {
        long[] shape = {1, 1};
        return int32 ? OnnxTensor.createTensor(env, memory.asIntBuffer().limit(1), shape)
                : OnnxTensor.createTensor(env, memory.asLongBuffer().limit(1), shape);
    }

    /** The ids tensor, now holding {@code token}. */
    OnnxTensor ids(int token) {
        write(idMemory, intIds, token);
        return ids;
    }

    /** The positions tensor, now holding {@code position}. */
    OnnxTensor positions(long position) {
        write(positionMemory, intPositions, position);
        return positions;
    }

    private static void write(ByteBuffer memory, boolean int32, long value) {
        if (int32) {
            memory.putInt(0, Math.toIntExact(value));
        } else {
            memory.putLong(0, value);
        }
    }

    /** A new [1, total] tensor of ones over the kept buffer (grown when too short); the caller closes it. */
    OnnxTensor mask(int total) throws OrtException {
        if (ones == null || ones.capacity() < total) {
            int length = Math.max(total, ones == null ? 256 : 2 * ones.capacity());
            ByteBuffer memory = direct(length * (intMask ? 4 : 8));
            if (intMask) {
                int[] values = new int[length];
                java.util.Arrays.fill(values, 1);
                ones = memory.asIntBuffer().put(values);
            } else {
                long[] values = new long[length];
                java.util.Arrays.fill(values, 1L);
                ones = memory.asLongBuffer().put(values);
            }
        }
        ones.clear().limit(total); // the tensor reads the first total values in place
        long[] shape = {1, total};
        return intMask ? OnnxTensor.createTensor(env, (java.nio.IntBuffer) ones, shape)
                : OnnxTensor.createTensor(env, (java.nio.LongBuffer) ones, shape);
    }

    @Override
    public void close() {
        ids.close();
        if (positions != null) {
            positions.close();
        }
    }
}
