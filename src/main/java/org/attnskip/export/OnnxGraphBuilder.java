package org.attnskip.export;

import ai.onnx.proto.OnnxMl.AttributeProto;
import ai.onnx.proto.OnnxMl.GraphProto;
import ai.onnx.proto.OnnxMl.NodeProto;
import ai.onnx.proto.OnnxMl.TensorProto;
import ai.onnx.proto.OnnxMl.TensorShapeProto;
import ai.onnx.proto.OnnxMl.TypeProto;
import ai.onnx.proto.OnnxMl.ValueInfoProto;

import com.google.protobuf.UnsafeByteOperations;
import org.attnskip.onnx.BadInputException;
import org.attnskip.onnx.ExternalDataWriter;
import org.attnskip.onnx.OnnxModelIO;
import org.attnskip.onnx.Tensors;

import java.nio.ByteBuffer;
import java.util.HashSet;
import java.util.Set;

/**
 * Appends nodes to a graph under construction. Each node gets a path-like name
 * ({@code /model/layers.0/self_attn/q_proj/MatMul}) and its outputs are named after it
 * ({@code ..._output_0}), the way torch.onnx and optimum name them, so that graphs read alike.
 */
final class OnnxGraphBuilder {
    private final GraphProto.Builder graph = GraphProto.newBuilder();
    private final Set<String> names = new HashSet<>();
    private final ExternalDataWriter externalData;

    OnnxGraphBuilder(String graphName) {
        this(graphName, null);
    }

    /** Initializers go to {@code externalData} as they are declared, so the graph never holds the weights. */
    OnnxGraphBuilder(String graphName, ExternalDataWriter externalData) {
        graph.setName(graphName);
        this.externalData = externalData;
    }

    /** Adds a node with one output and returns that output's name. */
    String op(String opType, String nodeName, String[] inputs, AttributeProto... attributes) {
        return ops(opType, nodeName, 1, inputs, attributes)[0];
    }

    /** Adds a node with {@code outputs} outputs and returns their names. */
    String[] ops(String opType, String nodeName, int outputs, String[] inputs, AttributeProto... attributes) {
        String[] out = new String[outputs];
        for (int i = 0; i < outputs; i++) {
            out[i] = nodeName + "_output_" + i;
        }
        node(opType, nodeName, inputs, out, attributes);
        return out;
    }

    /** Adds a node whose outputs are named by the caller (graph outputs such as {@code logits}). */
    void node(String opType, String nodeName, String[] inputs, String[] outputs, AttributeProto... attributes) {
        node("", opType, nodeName, inputs, outputs, attributes);
    }

    /** As above for an operator of another domain, such as ONNX Runtime's {@code com.microsoft}. */
    void node(String domain, String opType, String nodeName, String[] inputs, String[] outputs,
              AttributeProto... attributes) {
        if (!names.add(nodeName)) {
            throw new IllegalStateException("duplicate node name " + nodeName);
        }
        NodeProto.Builder n = NodeProto.newBuilder().setOpType(opType).setName(nodeName);
        if (!domain.isEmpty()) {
            n.setDomain(domain);
        }
        for (String in : inputs) {
            n.addInput(in);
        }
        for (String out : outputs) {
            n.addOutput(out);
        }
        for (AttributeProto a : attributes) {
            n.addAttribute(a);
        }
        graph.addNode(n);
    }

    String initializer(TensorProto tensor) {
        graph.addInitializer(externalData == null ? tensor : externalData.add(tensor));
        return tensor.getName();
    }

    /**
     * A tensor whose bytes are made as they are written: streamed to the external data file when
     * there is one and the tensor is large enough to go there, else gathered into the graph.
     */
    String initializer(TensorProto header, long length, ExternalDataWriter.TensorBytes bytes) {
        if (externalData != null && length >= OnnxModelIO.EXTERNAL_TENSOR_MIN_BYTES) {
            graph.addInitializer(externalData.add(header, length, bytes));
            return header.getName();
        }
        if (length > Tensors.MAX_INLINE_BYTES) {
            throw new BadInputException("tensor '" + header.getName() + "' would take " + length
                    + " bytes, more than the 2 GB a tensor inside the graph can hold; export with --external-data");
        }
        ByteBuffer all = ByteBuffer.allocate((int) length);
        long[] written = {0};
        bytes.writeTo(new ExternalDataWriter.ByteSink() {
            @Override
            public void write(ByteBuffer piece) {
                written[0] += piece.remaining();
                all.put(piece);
            }

            @Override
            public void writeAt(long tensorOffset, ByteBuffer piece) {
                written[0] += piece.remaining();
                all.put((int) tensorOffset, piece, piece.position(), piece.remaining());
            }
        });
        if (written[0] != length) {
            throw new IllegalStateException("tensor '" + header.getName() + "' wrote " + written[0]
                    + " bytes, not " + length);
        }
        return initializer(header.toBuilder().setRawData(UnsafeByteOperations.unsafeWrap(all.array())).build());
    }

    void input(String name, int elemType, String... dims) {
        graph.addInput(valueInfo(name, elemType, dims));
    }

    void output(String name, int elemType, String... dims) {
        graph.addOutput(valueInfo(name, elemType, dims));
    }

    GraphProto build() {
        return graph.build();
    }

    /** A tensor type whose dims are symbolic names, or fixed sizes when a dim parses as a number. */
    static ValueInfoProto valueInfo(String name, int elemType, String... dims) {
        TensorShapeProto.Builder shape = TensorShapeProto.newBuilder();
        for (String d : dims) {
            TensorShapeProto.Dimension.Builder dim = TensorShapeProto.Dimension.newBuilder();
            if (d.chars().allMatch(Character::isDigit)) {
                dim.setDimValue(Long.parseLong(d));
            } else {
                dim.setDimParam(d);
            }
            shape.addDim(dim);
        }
        TypeProto type = TypeProto.newBuilder()
                .setTensorType(TypeProto.Tensor.newBuilder().setElemType(elemType).setShape(shape))
                .build();
        return ValueInfoProto.newBuilder().setName(name).setType(type).build();
    }




    static String[] in(String... names) {
        return names;
    }
}
