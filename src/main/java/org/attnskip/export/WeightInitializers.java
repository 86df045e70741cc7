package org.attnskip.export;

import ai.onnx.proto.OnnxMl.TensorProto;
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
