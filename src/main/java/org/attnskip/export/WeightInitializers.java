package org.attnskip.export;

import ai.onnx.proto.OnnxMl.TensorProto;
import org.attnskip.onnx.Tensors;

/** Weights declared in the export's element type: what the unfused and the fused graph builders share. */
final class WeightInitializers {
    private final OnnxGraphBuilder g;
    private final ExportDtype dtype;

    WeightInitializers(OnnxGraphBuilder g, ExportDtype dtype) {
        this.g = g;
        this.dtype = dtype;
    }

    /** A weight matrix given [out][in], stored transposed [in][out] for MatMul (encoded without a transposed copy). */
    String matrix(String name, float[] outIn, int out, int in) {
        return g.initializer(Tensors.transposed(name, dtype.onnxType(), outIn, out, in));
    }

    String weight(String name, long[] dims, float[] values) {
        return g.initializer(tensor(name, dims, values));
    }

    TensorProto tensor(String name, long[] dims, float[] values) {
        return dtype == ExportDtype.FLOAT16
                ? Tensors.float16Tensor(name, dims, values)
                : Tensors.floatTensor(name, dims, values);
    }
}
