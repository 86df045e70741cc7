package org.attnskip.layout;

import ai.onnx.proto.OnnxMl.NodeProto;
import org.attnskip.onnx.Graph;

import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/** Finds each layer's attention core: a fused attention op, or the Softmax of a spelled-out one. */
final class AttentionCores {
    /** Ops that may sit between the Q·K MatMul and the Softmax (scale, mask, casts, activation QDQ pairs). */
    private static final Set<String> SCORE_OPS = Set.of("Add", "Where", "Div", "Mul", "Cast", "Sub", "Slice",
            "Reshape", "Transpose", "Identity", "QuantizeLinear", "DequantizeLinear");

    private AttentionCores() {
    }

    record Core(NodeProto node, AttentionKind kind, String branchOutput) {
    }

    /** Cores in topological order (the graph must be sorted). */
    static List<Core> find(Graph g) {
        List<Core> cores = new ArrayList<>();
        for (NodeProto n : g.nodes()) {
            AttentionKind kind = fusedKind(n);
            if (kind != null) {
                cores.add(new Core(n, kind, n.getOutput(0)));
            } else if (n.getOpType().equals("Softmax") && isDefaultDomain(n)) {
                String pv = probsTimesValues(g, n);
                if (pv != null && fedByScoresMatMul(g, n.getInput(0))) {
                    cores.add(new Core(n, AttentionKind.UNFUSED, pv));
                }
            }
        }
        return cores;
    }

    static AttentionKind fusedKind(NodeProto n) {
        String domain = n.getDomain();
        return switch (n.getOpType()) {
            case "MultiHeadAttention" -> domain.equals("com.microsoft") ? AttentionKind.MULTI_HEAD_ATTENTION : null;
            case "GroupQueryAttention" -> domain.equals("com.microsoft") ? AttentionKind.GROUP_QUERY_ATTENTION : null;
            case "Attention" -> domain.equals("com.microsoft") ? AttentionKind.FUSED_ATTENTION
                    : (domain.isEmpty() || domain.equals("ai.onnx")) ? AttentionKind.ONNX_ATTENTION : null;
            default -> null;
        };
    }

    /** The ONNX standard domain, spelled "" or "ai.onnx". */
    private static boolean isDefaultDomain(NodeProto n) {
        return n.getDomain().isEmpty() || n.getDomain().equals("ai.onnx");
    }

    /** The MatMul that multiplies the softmax probabilities with V (or the sum of a split one), or null. */
    private static String probsTimesValues(Graph g, NodeProto softmax) {
        String v = softmax.getOutput(0);
        for (int hop = 0; hop < HopLimits.SOFTMAX_TO_VALUES; hop++) {
            String next = null;
            for (NodeProto c : g.consumers(v)) {
                if (isValuesMatMul(g, c, v)) {
                    return c.getOutput(0);
                }
                String split = splitProbsTimesValues(g, c, v);
                if (split != null) {
                    return split;
                }
                if (c.getOpType().equals("Cast") || c.getOpType().equals("Dropout") || c.getOpType().equals("Identity")
                        || QdqPairs.isQuantizeOrDequantize(c)) {
                    next = c.getOutput(0);
                }
            }
            if (next == null) {
                return null;
            }
            v = next;
        }
        return null;
    }

    private static boolean isValuesMatMul(Graph g, NodeProto c, String probs) {
        return c.getOpType().equals("MatMul") && c.getInput(0).equals(probs) && !Projections.isWeight(g, c.getInput(1));
    }

    /**
     * freeze (all positions) splits the probabilities by key column, Where(mask, p, 0) and
     * Where(mask, 0, p), multiplies each part with its own V and adds the two: that Add is where the
     * attention's result is, when {@code where} is one of the two parts.
     */
    private static String splitProbsTimesValues(Graph g, NodeProto where, String probs) {
        if (!isMaskedPart(where, probs)) {
            return null;
        }
        for (NodeProto mm : g.consumers(where.getOutput(0))) {
            if (!isValuesMatMul(g, mm, where.getOutput(0))) {
                continue;
            }
            for (NodeProto add : g.consumers(mm.getOutput(0))) {
                if (!add.getOpType().equals("Add") || add.getInputCount() != 2) {
                    continue;
                }
                String other = add.getInput(0).equals(mm.getOutput(0)) ? add.getInput(1) : add.getInput(0);
                NodeProto otherMm = g.producer(other);
                NodeProto otherWhere = otherMm == null || !otherMm.getOpType().equals("MatMul") ? null
                        : g.producer(otherMm.getInput(0));
                if (otherWhere != null && otherWhere != where && isMaskedPart(otherWhere, probs)) {
                    return add.getOutput(0);
                }
            }
        }
        return null;
    }

    private static boolean isMaskedPart(NodeProto n, String probs) {
        return n.getOpType().equals("Where") && n.getInputCount() == 3
                && (n.getInput(1).equals(probs) || n.getInput(2).equals(probs));
    }

    /** True when the scores come from a MatMul of two computed tensors (Q and K), not a weight. */
    private static boolean fedByScoresMatMul(Graph g, String scores) {
        List<String> frontier = List.of(scores);
        for (int depth = 0; depth < HopLimits.SCORES_SEARCH_DEPTH && !frontier.isEmpty(); depth++) {
            List<String> next = new ArrayList<>();
            for (String v : frontier) {
                NodeProto p = g.producer(v);
                if (p == null) {
                    continue;
                }
                if (p.getOpType().equals("MatMul")) {
                    return !Projections.isWeight(g, p.getInput(0)) && !Projections.isWeight(g, p.getInput(1));
                }
                if (SCORE_OPS.contains(p.getOpType())) {
                    for (String in : p.getInputList()) {
                        if (!in.isEmpty() && !g.isInitializer(in)) {
                            next.add(in);
                        }
                    }
                }
            }
            frontier = next;
        }
        return false;
    }
}
