package org.attnskip.hostile;

import ai.onnx.proto.OnnxMl.GraphProto;
import ai.onnx.proto.OnnxMl.ModelProto;
import ai.onnx.proto.OnnxMl.NodeProto;
import ai.onnx.proto.OnnxMl.OperatorSetIdProto;
import ai.onnx.proto.OnnxMl.TensorProto;
import ai.onnx.proto.OnnxMl.TensorShapeProto;
import ai.onnx.proto.OnnxMl.TypeProto;
import ai.onnx.proto.OnnxMl.ValueInfoProto;

/** Small ONNX models built to stress readers: long chains and deep nesting. */
final class BombModels {
    private BombModels() {
    }

    static ModelProto model(GraphProto graph) {
        return ModelProto.newBuilder().setIrVersion(8).setGraph(graph)
                .addOpsetImport(OperatorSetIdProto.newBuilder().setVersion(17)).build();
    }

    /** x -> Identity -> Identity -> ... (n nodes) -> y. */
    static GraphProto chain(int n) {
        TypeProto t = TypeProto.newBuilder().setTensorType(TypeProto.Tensor.newBuilder()
                .setElemType(TensorProto.DataType.FLOAT_VALUE)
                .setShape(TensorShapeProto.newBuilder().addDim(TensorShapeProto.Dimension.newBuilder().setDimValue(2)))).build();
        GraphProto.Builder g = GraphProto.newBuilder().setName("chain")
                .addInput(ValueInfoProto.newBuilder().setName("v0").setType(t));
        for (int i = 0; i < n; i++) {
            g.addNode(NodeProto.newBuilder().setOpType("Identity").addInput("v" + i).addOutput("v" + (i + 1)));
        }
        return g.addOutput(ValueInfoProto.newBuilder().setName("v" + n).setType(t)).build();
    }
}
