package org.attnskip.export;

import ai.onnx.proto.OnnxMl.TensorProto;
import org.attnskip.onnx.Attributes;
import org.attnskip.onnx.Tensors;

/**
 * Weights declared in the export's element type: what the unfused and the fused graph builders
 * share. Weights are encoded from {@link WeightRows} a block at a time (see {@link WeightEncoder}),
 * straight into the external data file when the builder streams.
 */
final class WeightInitializers {
    private final OnnxGraphBuilder g;
    private final ExportDtype dtype;
    private final WeightEncoder encoder;

    WeightInitializers(OnnxGraphBuilder g, ExportDtype dtype) {
        this.g = g;
        this.dtype = dtype;
        this.encoder = new WeightEncoder(dtype);
    }

    /**
     * x W^T for W given [out][in]: a MatMul against W stored [in][out], or for a quantized dtype a
     * com.microsoft::MatMulNBits over W's blocks. Returns the product's name: {@code output}, or
     * the node's first output when {@code output} is null.
     */
    String project(String nodeName, String x, String weightName, WeightRows outIn, String output) {
        String y = output != null ? output : nodeName + "_output_0";
        if (dtype.weightBits() == 0) {
            g.node("MatMul", nodeName, OnnxGraphBuilder.in(x, matrix(weightName, outIn)), OnnxGraphBuilder.in(y));
            return y;
        }
        // Quantization needs the whole matrix at once; quantized exports are the small CPU graphs.
        int out = outIn.rows();
        int in = outIn.cols();
        BlockQuantizer.Quantized q = BlockQuantizer.quantize(weightName, outIn.readAll(), out, in, dtype.weightBits());
        g.node(FusedLlamaExporter.MICROSOFT, "MatMulNBits", nodeName,
                OnnxGraphBuilder.in(x, g.initializer(q.b()), g.initializer(q.scales()), g.initializer(q.zeroPoints())),
                OnnxGraphBuilder.in(y), Attributes.intAttr("K", in), Attributes.intAttr("N", out),
                Attributes.intAttr("bits", q.bits()), Attributes.intAttr("block_size", BlockQuantizer.BLOCK_SIZE));
        return y;
    }

    /** A weight matrix given [out][in], stored transposed [in][out] for MatMul. */
    String matrix(String name, WeightRows outIn) {
        return g.initializer(header(name, outIn.cols(), outIn.rows()), encoder.bytes(outIn), encoder.transposed(outIn));
    }

    /** A weight stored as it is read, with the given dims (a vector's one row is dims {n}). */
    String weight(String name, long[] dims, WeightRows values) {
        return g.initializer(header(name, dims), encoder.bytes(values), encoder.asStored(values));
    }

    /** A small table or constant made in memory (rotary tables, scalars). */
    TensorProto tensor(String name, long[] dims, float[] values) {
        return dtype == ExportDtype.FLOAT16
                ? Tensors.float16Tensor(name, dims, values)
                : Tensors.floatTensor(name, dims, values);
    }

    private TensorProto header(String name, long... dims) {
        TensorProto.Builder t = TensorProto.newBuilder().setName(name).setDataType(dtype.onnxType());
        for (long d : dims) {
            t.addDims(d);
        }
        return t.build();
    }
}
