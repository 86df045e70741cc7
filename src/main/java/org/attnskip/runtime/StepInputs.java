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
 * positions tensors, made once and rewritten in place before each run, and the attention mask:
 * either one [1, capacity] tensor kept for the sequence (where the graph reads the mask as lengths),
 * or a new view each step of the first {@code total} values of a direct buffer of ones. Integers
 * are int64 or int32 as the graph declares them. Kept by the sequence's {@link InputScratch}, which
 * closes it.
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
    private OnnxTensor widthMask;
    private ByteBuffer widthMaskMemory;
    private int widthMaskOnes;

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
        write(idMemory, intIds, 0, token);
        return ids;
    }

    /** The positions tensor, now holding {@code position}. */
    OnnxTensor positions(long position) {
        write(positionMemory, intPositions, 0, position);
        return positions;
    }

    /** Writes element {@code index} of an int32 or int64 buffer. */
    private static void write(ByteBuffer memory, boolean int32, int index, long value) {
        if (int32) {
            memory.putInt(4 * index, Math.toIntExact(value));
        } else {
            memory.putLong(8 * index, value);
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

    /**
     * The sequence's one [1, width] mask, kept across steps: ones on the first {@code total} positions,
     * zeros after them. Only the values change from step to step, so every decode step of the sequence
     * has the same input shapes, and ONNX Runtime reuses the memory plan it made for the first one
     * (with a [1, total] mask each step was a new shape, planned anew). The width is the cache's
     * capacity, or less where the graph bounds it (layout.StepMaskWidth). The sequence closes the
     * tensor ({@link #close}), not the caller.
     */
    OnnxTensor fixedWidthMask(int total, int width) throws OrtException {
        if (total > width) {
            throw new IllegalArgumentException("mask of " + total + " positions is wider than " + width);
        }
        if (widthMask == null || keptMaskWidth() != width) {
            if (widthMask != null) {
                widthMask.close();
                widthMask = null;
            }
            widthMaskMemory = direct(width * (intMask ? 4 : 8)); // zeros
            long[] shape = {1, width};
            widthMask = intMask ? OnnxTensor.createTensor(env, widthMaskMemory.asIntBuffer(), shape)
                    : OnnxTensor.createTensor(env, widthMaskMemory.asLongBuffer(), shape);
            widthMaskOnes = 0;
        }
        for (; widthMaskOnes < total; widthMaskOnes++) {
            write(widthMaskMemory, intMask, widthMaskOnes, 1);
        }
        for (; widthMaskOnes > total; widthMaskOnes--) {
            write(widthMaskMemory, intMask, widthMaskOnes - 1, 0);
        }
        return widthMask;
    }

    /** The width of the kept fixed-width mask, 0 while the steps make a mask per run. */
    int keptMaskWidth() {
        return widthMask == null ? 0 : widthMaskMemory.capacity() / (intMask ? 4 : 8);
    }

    @Override
    public void close() {
        if (widthMask != null) {
            widthMask.close();
        }
        ids.close();
        if (positions != null) {
            positions.close();
        }
    }
}
