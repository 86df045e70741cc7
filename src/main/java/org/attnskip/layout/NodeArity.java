package org.attnskip.layout;

import ai.onnx.proto.OnnxMl.NodeProto;
import org.attnskip.onnx.BadInputException;
import org.attnskip.onnx.Graph;

import java.util.Map;

/**
 * The fewest inputs and outputs the operators that discovery and the passes read by position must
 * have (from the ONNX and ONNX Runtime contrib operator specifications). A node with fewer is a
 * broken graph: it is refused by name here instead of failing deep inside a pattern match.
 */
final class NodeArity {
    private record Arity(int inputs, int outputs) {
    }

    private static final Map<String, Arity> MINIMUM = Map.ofEntries(
            Map.entry("MatMul", new Arity(2, 1)),
            Map.entry("Gemm", new Arity(2, 1)),
            Map.entry("MatMulNBits", new Arity(3, 1)),
            Map.entry("Add", new Arity(2, 1)),
            Map.entry("Sub", new Arity(2, 1)),
            Map.entry("Mul", new Arity(2, 1)),
            Map.entry("Div", new Arity(2, 1)),
            Map.entry("Pow", new Arity(2, 1)),
            Map.entry("Where", new Arity(3, 1)),
            Map.entry("Softmax", new Arity(1, 1)),
            Map.entry("Reshape", new Arity(2, 1)),
            Map.entry("Transpose", new Arity(1, 1)),
            Map.entry("Concat", new Arity(1, 1)),
            Map.entry("Gather", new Arity(2, 1)),
            Map.entry("Expand", new Arity(2, 1)),
            Map.entry("LayerNormalization", new Arity(2, 1)),
            Map.entry("SimplifiedLayerNormalization", new Arity(2, 1)),
            Map.entry("RMSNormalization", new Arity(2, 1)),
            Map.entry("SkipLayerNormalization", new Arity(3, 1)),
            Map.entry("SkipSimplifiedLayerNormalization", new Arity(3, 1)),
            Map.entry("RotaryEmbedding", new Arity(3, 1)),
            Map.entry("MultiHeadAttention", new Arity(1, 1)),
            Map.entry("GroupQueryAttention", new Arity(7, 1)),
            Map.entry("Attention", new Arity(2, 1)));

    private NodeArity() {
    }

    static void check(Graph g) {
        for (NodeProto n : g.nodes()) {
            Arity a = MINIMUM.get(n.getOpType());
            if (a != null && (n.getInputCount() < a.inputs() || n.getOutputCount() < a.outputs())) {
                throw new BadInputException("node '" + n.getName() + "' (" + n.getOpType() + ") has "
                        + n.getInputCount() + " inputs and " + n.getOutputCount() + " outputs; " + n.getOpType()
                        + " needs at least " + a.inputs() + " and " + a.outputs());
            }
        }
    }
}
