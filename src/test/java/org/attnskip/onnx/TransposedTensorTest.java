package org.attnskip.onnx;

import ai.onnx.proto.OnnxMl.TensorProto;
import ai.onnx.proto.OnnxMl.TensorProto.DataType;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** Tensors.transposed against the definition, on sizes that leave partial blocks at both edges. */
class TransposedTensorTest {
    @Test
    void storesEveryValueAtItsTransposedPlace() {
        int rows = 70;
        int cols = 131;
        float[] m = new float[rows * cols];
        Random r = new Random(4);
        for (int i = 0; i < m.length; i++) {
            m[i] = (float) r.nextGaussian();
        }
        TensorProto f32 = Tensors.transposed("w", DataType.FLOAT_VALUE, m, rows, cols);
        TensorProto f16 = Tensors.transposed("w", DataType.FLOAT16_VALUE, m, rows, cols);
        assertEquals(List.of((long) cols, (long) rows), f32.getDimsList());
        float[] a = Tensors.floats(f32, null);
        float[] h = Tensors.floats(f16, null);
        for (int row = 0; row < rows; row++) {
            for (int col = 0; col < cols; col++) {
                float v = m[row * cols + col];
                assertEquals(v, a[col * rows + row], 0f);
                assertEquals(Half.toFloat(Half.fromFloat(v)), h[col * rows + row], 0f);
            }
        }
    }
}
