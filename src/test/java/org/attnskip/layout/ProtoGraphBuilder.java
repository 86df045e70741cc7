package org.attnskip.layout;

import ai.onnx.proto.OnnxMl.AttributeProto;
import ai.onnx.proto.OnnxMl.GraphProto;
import ai.onnx.proto.OnnxMl.ModelProto;
import ai.onnx.proto.OnnxMl.NodeProto;
import ai.onnx.proto.OnnxMl.OperatorSetIdProto;
import ai.onnx.proto.OnnxMl.TensorProto;
import ai.onnx.proto.OnnxMl.TensorShapeProto;
import ai.onnx.proto.OnnxMl.TypeProto;
import ai.onnx.proto.OnnxMl.ValueInfoProto;
import org.attnskip.onnx.Tensors;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

/**
 * Writes an ONNX graph node by node, the way an exporter does: seeded random weights, graph I/O
 * with symbolic dimensions, and nodes whose outputs are named "{node}/output_{k}". Test-only.
 */
final class ProtoGraphBuilder {
    static final String MICROSOFT = "com.microsoft";

    private final GraphProto.Builder graph = GraphProto.newBuilder();
    private final Random rnd;

    ProtoGraphBuilder(String name, long seed) {
        graph.setName(name);
        this.rnd = new Random(seed);
    }

    // ---- weights and constants ----

    /** A [rows, cols] weight in MatMul orientation (input dim first), scaled so activations stay O(1). */
    String weight(String name, int rows, int cols) {
        float[] v = new float[rows * cols];
        double scale = 1.0 / Math.sqrt(rows);
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) (rnd.nextGaussian() * scale);
        }
        return initializer(Tensors.floatTensor(name, new long[] {rows, cols}, v));
    }

    /** A norm's scale vector: ones with a little noise, so that a wrong norm would show. */
    String normScale(String name, int size) {
        float[] v = new float[size];
        for (int i = 0; i < size; i++) {
            v[i] = (float) (1.0 + 0.1 * rnd.nextGaussian());
        }
        return initializer(Tensors.floatTensor(name, new long[] {size}, v));
    }

    String floats(String name, long[] dims, float[] values) {
        return initializer(Tensors.floatTensor(name, dims, values));
    }

    String longs(String name, long... values) {
        return initializer(Tensors.longVector(name, values));
    }

    TensorProto initializerNamed(String name) {
        return graph.getInitializerList().stream().filter(t -> t.getName().equals(name)).findFirst().orElseThrow();
    }

    String initializer(TensorProto t) {
        graph.addInitializer(t);
        return t.getName();
    }

    /** A Constant node holding a scalar or 1-D int64 (ORT GenAI's builder spells constants this way). */
    String constant(String name, boolean scalar, long... values) {
        long[] dims = scalar ? new long[0] : new long[] {values.length};
        TensorProto t = Tensors.longTensor("", dims, values);
        return node("Constant", "", name, List.of(), org.attnskip.onnx.Attributes.tensorAttr("value", t));
    }

    // ---- nodes ----

    /** Adds a node with one output named "{name}/output_0" and returns that output. */
    String node(String op, String domain, String name, List<String> inputs, AttributeProto... attrs) {
        return nodeWithOutputs(op, domain, name, inputs, List.of(name + "/output_0"), attrs).get(0);
    }

    String node(String op, String name, List<String> inputs, AttributeProto... attrs) {
        return node(op, "", name, inputs, attrs);
    }

    /** Adds a node with the given outputs ("" for an omitted optional output) and returns them. */
    List<String> nodeWithOutputs(String op, String domain, String name, List<String> inputs, List<String> outputs,
                                 AttributeProto... attrs) {
        graph.addNode(NodeProto.newBuilder().setOpType(op).setDomain(domain).setName(name)
                .addAllInput(inputs).addAllOutput(outputs).addAllAttribute(Arrays.asList(attrs)).build());
        return outputs;
    }





    // ---- graph I/O ----

    /** Dimensions are Integer/Long (fixed) or String (symbolic). */
    void input(String name, TensorProto.DataType type, Object... dims) {
        graph.addInput(valueInfo(name, type, dims));
    }

    void output(String name, TensorProto.DataType type, Object... dims) {
        graph.addOutput(valueInfo(name, type, dims));
    }

    /** An output declared as given (say, with no shape). */
    void rawOutput(ValueInfoProto v) {
        graph.addOutput(v);
    }

    private static ValueInfoProto valueInfo(String name, TensorProto.DataType type, Object... dims) {
        TensorShapeProto.Builder shape = TensorShapeProto.newBuilder();
        for (Object d : dims) {
            TensorShapeProto.Dimension.Builder dim = TensorShapeProto.Dimension.newBuilder();
            if (d instanceof String s) {
                dim.setDimParam(s);
            } else {
                dim.setDimValue(((Number) d).longValue());
            }
            shape.addDim(dim);
        }
        TypeProto.Tensor tensor = TypeProto.Tensor.newBuilder().setElemType(type.getNumber()).setShape(shape).build();
        return ValueInfoProto.newBuilder().setName(name).setType(TypeProto.newBuilder().setTensorType(tensor)).build();
    }

    /** The model, importing the default domain at {@code opset} and com.microsoft at 1 when it is used. */
    ModelProto model(long irVersion, long opset, String producer) {
        GraphProto g = graph.build();
        List<OperatorSetIdProto> opsets = new ArrayList<>();
        opsets.add(OperatorSetIdProto.newBuilder().setDomain("").setVersion(opset).build());
        if (g.getNodeList().stream().anyMatch(n -> n.getDomain().equals(MICROSOFT))) {
            opsets.add(OperatorSetIdProto.newBuilder().setDomain(MICROSOFT).setVersion(1).build());
        }
        return ModelProto.newBuilder().setIrVersion(irVersion).setProducerName(producer).addAllOpsetImport(opsets)
                .setGraph(g).build();
    }
}
