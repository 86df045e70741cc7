package org.attnskip.rewrite;

import ai.onnx.proto.OnnxMl.AttributeProto;
import org.attnskip.onnx.Attributes;
import ai.onnx.proto.OnnxMl.NodeProto;
import ai.onnx.proto.OnnxMl.TensorShapeProto;
import ai.onnx.proto.OnnxMl.TypeProto;
import ai.onnx.proto.OnnxMl.ValueInfoProto;
import org.attnskip.onnx.Graph;
import org.attnskip.onnx.Tensors;

/**
 * Adds small computations to a graph being rewritten: one call per node, fresh names under a
 * common prefix, and the few ops whose signature changed across opsets (Unsqueeze and ReduceSum
 * took axes as an attribute before opset 13) spelled for the graph's own opset.
 */
final class NodeEmitter {
    private final Graph g;
    private final String prefix;
    private final long opset;

    NodeEmitter(Graph g, String prefix) {
        this.g = g;
        this.prefix = prefix;
        this.opset = g.opset("");
    }

    String op(String type, String... inputs) {
        return op(type, new AttributeProto[0], inputs);
    }

    String op(String type, AttributeProto[] attributes, String... inputs) {
        String name = g.freshName(prefix + "/" + type);
        String out = g.freshName(name + "_output_0");
        NodeProto.Builder n = NodeProto.newBuilder().setOpType(type).setName(name).addOutput(out);
        for (String in : inputs) {
            n.addInput(in);
        }
        for (AttributeProto a : attributes) {
            n.addAttribute(a);
        }
        g.add(n.build());
        return out;
    }

    String int64s(String hint, long... values) {
        String name = g.freshName(prefix + "/" + hint);
        g.addInitializer(Tensors.longVector(name, values));
        return name;
    }

    String int64Scalar(String hint, long value) {
        String name = g.freshName(prefix + "/" + hint);
        g.addInitializer(Tensors.longTensor(name, new long[0], value));
        return name;
    }

    String int32Scalar(String hint, int value) {
        String name = g.freshName(prefix + "/" + hint);
        g.addInitializer(Tensors.intScalar(name, value));
        return name;
    }

    String unsqueeze(String x, long axis) {
        return opset >= 13 ? op("Unsqueeze", x, int64s("axes", axis))
                : op("Unsqueeze", new AttributeProto[] {Attributes.intsAttr("axes", axis)}, x);
    }

    String reduceSumLastKeep(String x) {
        AttributeProto keep = Attributes.intAttr("keepdims", 1);
        return opset >= 13 ? op("ReduceSum", new AttributeProto[] {keep}, x, int64s("axes", -1))
                : op("ReduceSum", new AttributeProto[] {keep, Attributes.intsAttr("axes", -1)}, x);
    }

    /** Splits x along axis into parts of the given sizes (Split took the sizes as an attribute before opset 13). */
    String[] split(String x, long axis, long... sizes) {
        String name = g.freshName(prefix + "/Split");
        NodeProto.Builder n = NodeProto.newBuilder().setOpType("Split").setName(name).addInput(x)
                .addAttribute(Attributes.intAttr("axis", axis));
        if (opset >= 13) {
            n.addInput(int64s("split", sizes));
        } else {
            n.addAttribute(Attributes.intsAttr("split", sizes));
        }
        String[] outs = new String[sizes.length];
        for (int i = 0; i < sizes.length; i++) {
            outs[i] = g.freshName(name + "_output_" + i);
            n.addOutput(outs[i]);
        }
        g.add(n.build());
        return outs;
    }

    /** Gives {@code value} a second, chosen name (a new graph output) through an Identity node. */
    void identity(String value, String output) {
        g.add(NodeProto.newBuilder().setOpType("Identity").setName(g.freshName(prefix + "/Identity"))
                .addInput(value).addOutput(output).build());
    }

    /** Graph I/O shaped like the residual stream: [batch_size, sequence_length, hidden] (hidden_size when unknown). */
    static ValueInfoProto streamShaped(String name, int elemType, int hidden) {
        TensorShapeProto.Builder shape = TensorShapeProto.newBuilder()
                .addDim(TensorShapeProto.Dimension.newBuilder().setDimParam("batch_size"))
                .addDim(TensorShapeProto.Dimension.newBuilder().setDimParam("sequence_length"))
                .addDim(hidden > 0 ? TensorShapeProto.Dimension.newBuilder().setDimValue(hidden)
                        : TensorShapeProto.Dimension.newBuilder().setDimParam("hidden_size"));
        return ValueInfoProto.newBuilder().setName(name).setType(TypeProto.newBuilder()
                .setTensorType(TypeProto.Tensor.newBuilder().setElemType(elemType).setShape(shape))).build();
    }

    /** The size of one axis of x, as an int64 scalar. */
    String dim(String x, long axis) {
        return op("Gather", new AttributeProto[] {Attributes.intAttr("axis", 0)}, op("Shape", x), int64Scalar("axis", axis));
    }
}
