package org.attnskip.layout;

import ai.onnx.proto.OnnxMl.NodeProto;
import org.attnskip.onnx.BadInputException;
import org.attnskip.onnx.DataFlow;
import org.attnskip.onnx.Graph;

import java.util.Set;

/**
 * Walks from an attention anchor to its parents, as ONNX Runtime's fusions match a pattern:
 * from the Softmax back to the Q·K MatMul, from the query operand back to the Q projection and
 * the normalised hidden state it reads. Each walk follows the first operand computed from the
 * data, skipping weights, constants and shape arithmetic. What counts as a projection is
 * {@link Projections}' to say.
 */
final class ParentWalk {
    private static final Set<String> FUSED_NORMS = Set.of("LayerNormalization", "SimplifiedLayerNormalization",
            "RMSNormalization", "SkipLayerNormalization", "SkipSimplifiedLayerNormalization", "EmbedLayerNormalization");
    /** Ops between a normalised hidden state and the attention that do not mix tokens (activation QDQ pairs too). */
    private static final Set<String> PROJECTION_PATH = Set.of("RotaryEmbedding", "Reshape", "Transpose", "Add", "Cast",
            "Squeeze", "Unsqueeze", "Split", "Slice", "Identity", "Div", "Mul", "Sub", "Gather", "Concat", "Neg",
            "QuantizeLinear", "DequantizeLinear");

    private final Graph g;

    ParentWalk(Graph g) {
        this.g = g;
    }

    static boolean isConstant(Graph g, String value) {
        NodeProto p = g.producer(value);
        return p != null && (p.getOpType().equals("Constant") || p.getOpType().equals("ConstantOfShape"));
    }

    /** A weight or a constant: a value that does not depend on the model's inputs. */
    static boolean isFixed(Graph g, String value) {
        return g.isInitializer(value) || isConstant(g, value);
    }

    /** The attention's query operand: input 0 of a fused op, the left side of an unfused Q.K MatMul. */
    String queryInput(AttentionCores.Core core) {
        if (core.kind() != AttentionKind.UNFUSED) {
            return core.node().getInput(0);
        }
        NodeProto scores = scoresMatMul(core.node());
        return scores == null ? null : scores.getInput(0);
    }

    /** The Q x K^T MatMul feeding a Softmax, or null. */
    NodeProto scoresMatMul(NodeProto softmax) {
        String v = softmax.getInput(0);
        for (int depth = 0; depth < HopLimits.SOFTMAX_TO_SCORES; depth++) {
            NodeProto p = g.producer(v);
            if (p == null) {
                return null;
            }
            if (p.getOpType().equals("MatMul")) {
                return p;
            }
            v = firstComputedInput(p.getOpType().equals("Where") ? dropFirstInput(p) : p);
            if (v == null) {
                return null;
            }
        }
        return null;
    }

    /** The probabilities x V MatMul; null when freeze has split it in two (see AttentionCores). */
    NodeProto valuesMatMul(AttentionCores.Core core) {
        NodeProto p = g.producer(core.branchOutput());
        return p != null && p.getOpType().equals("MatMul") ? p : null;
    }

    /** The value the Q (or packed QKV) projection reads: the normalised hidden state. */
    String projectionInput(int layer, AttentionCores.Core core) {
        if (core.kind() == AttentionKind.FUSED_ATTENTION) {
            return core.node().getInput(0); // the QKV projection happens inside the op
        }
        QueryStop stop = queryStop(layer, core);
        return Projections.isProjection(g, stop.node()) ? throughReshapes(stop.node().getInput(0)) : stop.value();
    }

    /** How the Q (or packed QKV) projection stores its weight; a fused attention op's own weight is float. */
    ProjectionKind projectionKind(int layer, AttentionCores.Core core) {
        if (core.kind() == AttentionKind.FUSED_ATTENTION) {
            return ProjectionKind.FLOAT;
        }
        QueryStop stop = queryStop(layer, core);
        return Projections.isProjection(g, stop.node()) ? Projections.kindOf(g, stop.node()) : ProjectionKind.FLOAT;
    }

    /** Where the walk back from the query stops: the Q projection, or a fused norm producing {@code value}. */
    private record QueryStop(NodeProto node, String value) {
    }

    private QueryStop queryStop(int layer, AttentionCores.Core core) {
        NodeProto n = core.node();
        String v;
        if (core.kind() == AttentionKind.UNFUSED) {
            NodeProto scores = scoresMatMul(n);
            if (scores == null) {
                throw new BadInputException("layer " + layer + ": cannot find the Q.K MatMul before the Softmax");
            }
            v = scores.getInput(0);
        } else {
            v = n.getInput(0);
        }
        for (int depth = 0; depth < HopLimits.QUERY_TO_PROJECTION; depth++) {
            NodeProto p = g.producer(v);
            if (p == null) {
                break;
            }
            if (Projections.isProjection(g, p) || FUSED_NORMS.contains(p.getOpType())) {
                return new QueryStop(p, v);
            }
            if (!PROJECTION_PATH.contains(p.getOpType())) {
                break;
            }
            v = firstComputedInput(p);
            if (v == null) {
                break;
            }
        }
        throw new BadInputException("layer " + layer + ": cannot find the Q projection feeding the attention");
    }

    private static NodeProto dropFirstInput(NodeProto where) {
        return where.toBuilder().clearInput().addAllInput(where.getInputList().subList(1, where.getInputCount())).build();
    }

    /** The first input that is computed from the data (not a weight, not a constant, not shape arithmetic). */
    private String firstComputedInput(NodeProto p) {
        for (String in : p.getInputList()) {
            if (in.isEmpty() || isFixed(g, in)) {
                continue;
            }
            NodeProto src = g.producer(in);
            if (src != null && (DataFlow.readsOnlyShape(src) || src.getOpType().equals("Concat") && isShapeArithmetic(src))) {
                continue;
            }
            return in;
        }
        return null;
    }

    private boolean isShapeArithmetic(NodeProto concat) {
        return concat.getInputList().stream().allMatch(in -> {
            NodeProto p = g.producer(in);
            return p == null ? g.isInitializer(in) : p.getOpType().equals("Unsqueeze") || p.getOpType().equals("Constant");
        });
    }

    private String throughReshapes(String v) {
        for (int depth = 0; depth < HopLimits.RESHAPES_BEFORE_PROJECTION; depth++) {
            v = QdqPairs.source(g, v);
            NodeProto p = g.producer(v);
            if (p == null || !(p.getOpType().equals("Reshape") || p.getOpType().equals("Cast")
                    || p.getOpType().equals("Identity"))) {
                return v;
            }
            v = p.getInput(0);
        }
        return v;
    }
}
