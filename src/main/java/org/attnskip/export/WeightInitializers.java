package org.attnskip.export;

import ai.onnx.proto.OnnxMl.TensorProto;
import org.attnskip.onnx.Attributes;
import org.attnskip.onnx.Tensors;

/** Weights declared in the export's element type: what the unfused and the fused graph builders share. */
final class WeightInitializers {
    private final OnnxGraphBuilder g;
    private final ExportDtype dtype;

    WeightInitializers(OnnxGraphBuilder g, ExportDtype dtype) {
        this.g = g;
        this.dtype = dtype;
    }

    /**
     * x W^T for W given [out][in]: a MatMul against W stored [in][out], or for a quantized dtype a
     * com.microsoft::MatMulNBits over W's blocks. Returns the product's name: {@code output}, or
     * the node's first output when {@code output} is null.
     */
    String project(String nodeName, String x, String weightName, float[] outIn, int out, int in, String output) {
        String y = output != null ? output : nodeName + "_output_0";
        if (dtype.weightBits() == 0) {
            g.node("MatMul", nodeName, OnnxGraphBuilder.in(x, matrix(weightName, outIn, out, in)), OnnxGraphBuilder.in(y));
            return y;
        }
        BlockQuantizer.Quantized q = BlockQuantizer.quantize(weightName, outIn, out, in, dtype.weightBits());
        g.node(FusedLlamaExporter.MICROSOFT, "MatMulNBits", nodeName,
                OnnxGraphBuilder.in(x, g.initializer(q.b()), g.initializer(q.scales()), g.initializer(q.zeroPoints())),
                OnnxGraphBuilder.in(y), Attributes.intAttr("K", in), Attributes.intAttr("N", out),
                Attributes.intAttr("bits", q.bits()), Attributes.intAttr("block_size", BlockQuantizer.BLOCK_SIZE));
        return y;
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
