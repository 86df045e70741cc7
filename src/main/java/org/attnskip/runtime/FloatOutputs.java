package org.attnskip.runtime;

import ai.onnxruntime.OnnxJavaType;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtSession;
import org.attnskip.onnx.Half;

import java.nio.ShortBuffer;

/** Reads a run's float outputs as fp32, widening fp16 ones. */
final class FloatOutputs {
    private FloatOutputs() {
    }

    /** Every value of an fp32 or fp16 tensor, row-major. */
    static float[] values(OnnxTensor t) {
        long count = 1;
        for (long d : t.getInfo().getShape()) {
            count *= d;
        }
        float[] values = new float[Math.toIntExact(count)];
        if (t.getInfo().type == OnnxJavaType.FLOAT16) {
            ShortBuffer half = t.getShortBuffer();
            for (int i = 0; i < values.length; i++) {
                values[i] = Half.toFloat(half.get(i));
            }
        } else {
            t.getFloatBuffer().get(values);
        }
        return values;
    }

    /** A [1, S, N] (or [S, N]) output as [S][N]; null when the result lacks it. */
    static float[][] rows(OrtSession.Result result, String name) {
        var value = result.get(name);
        if (value.isEmpty()) {
            return null;
        }
        OnnxTensor t = (OnnxTensor) value.get();
        long[] shape = t.getInfo().getShape();
        int rows = (int) shape[shape.length - 2];
        int cols = (int) shape[shape.length - 1];
        float[] flat = values(t);
        float[][] out = new float[rows][cols];
        for (int i = 0; i < rows; i++) {
            System.arraycopy(flat, i * cols, out[i], 0, cols);
        }
        return out;
    }
}
