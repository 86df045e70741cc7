package org.attnskip.layout;

import ai.onnx.proto.OnnxMl.NodeProto;
import org.attnskip.onnx.DataFlow;
import org.attnskip.onnx.Graph;

import java.util.List;
import java.util.Set;

/**
 * The residual stream. A residual add is a default-domain Add, or a fused Skip*Norm, which adds
 * its first two inputs and exposes the sum as output 3 (output 0 is the sum normalised). This
 * class states that rule once, and checks that one layer's stream reaches the next layer.
 */
final class ResidualChain {
    private static final Set<String> SKIP_NORMS = Set.of("SkipLayerNormalization", "SkipSimplifiedLayerNormalization");
    /** The output of a Skip*Norm that carries the un-normalised sum. */
    private static final int SKIP_NORM_SUM_OUTPUT = 3;

    private final Graph g;
    private final DataFlow flow;

    ResidualChain(Graph g, DataFlow flow) {
        this.g = g;
        this.flow = flow;
    }

    static boolean isSkipNorm(NodeProto n) {
        return SKIP_NORMS.contains(n.getOpType());
    }

    /** A node that can add a branch into the stream: a default-domain Add or a Skip*Norm. */
    static boolean isResidualAdd(NodeProto n) {
        boolean plainAdd = n.getOpType().equals("Add") && n.getDomain().isEmpty();
        return (plainAdd || isSkipNorm(n)) && n.getInputCount() >= 2;
    }

    /** The stream after a residual add: the Add's output, or a Skip*Norm's sum output ("" when it does not expose it). */
    static String sumOf(NodeProto add) {
        if (!isSkipNorm(add)) {
            return add.getOutput(0);
        }
        return add.getOutputCount() > SKIP_NORM_SUM_OUTPUT ? add.getOutput(SKIP_NORM_SUM_OUTPUT) : "";
    }

    /**
     * True when the stream goes from one value to the other directly or through residual adds
     * only, that is through layers whose attention a rewrite removed (h + MLP(norm(h))), or through
     * the edits attnskip's other passes make between two layers: a slice of positions (freeze's
     * last-position prefill) and a per-position choice between the stream and a value computed
     * from it (random's noise).
     */
    boolean connects(String from, String to) {
        String v = from;
        for (int hops = 0; hops < HopLimits.RESIDUAL_CHAIN && !v.isEmpty(); hops++) {
            if (v.equals(to)) {
                return true;
            }
            String next = null;
            Set<String> downstream = flow.forwardValues(streamAndItsNorm(v));
            Set<String> aliases = QdqPairs.aliases(g, v);
            for (NodeProto c : QdqPairs.readers(g, v)) {
                next = streamStep(c, aliases, downstream);
                if (next != null) {
                    break;
                }
            }
            if (next == null) {
                return false;
            }
            v = next;
        }
        return false;
    }

    /**
     * The stream value, plus the normalised stream when a Skip*Norm made both: its output 0 is
     * norm(output 3), so what is computed from output 0 (a calibrated drop's map of the attention
     * norm) is computed from the stream, though no edge in the graph says so.
     */
    private List<String> streamAndItsNorm(String v) {
        NodeProto p = g.producer(v);
        if (p != null && isSkipNorm(p) && sumOf(p).equals(v) && !p.getOutput(0).isEmpty()) {
            return List.of(v, p.getOutput(0));
        }
        return List.of(v);
    }

    /** The stream after consumer c, when c carries the stream v (read as one of {@code vs}: v or a QDQ copy) on, else null. */
    private String streamStep(NodeProto c, Set<String> vs, Set<String> downstream) {
        boolean plain = c.getDomain().isEmpty();
        if (isResidualAdd(c)) {
            String other = vs.contains(c.getInput(0)) ? c.getInput(1) : c.getInput(0);
            return downstream.contains(other) ? sumOf(c) : null;
        }
        // Slice(h, starts, ends, axes) with constant bounds keeps some positions of the stream.
        if (plain && c.getOpType().equals("Slice") && vs.contains(c.getInput(0)) && c.getInputCount() >= 3
                && c.getInputList().subList(1, c.getInputCount()).stream().allMatch(in -> ParentWalk.isFixed(g, in))) {
            return c.getOutput(0);
        }
        // Where(mask, h, f(h)) or Where(mask, f(h), h): each position is the stream or computed from it.
        if (plain && c.getOpType().equals("Where") && c.getInputCount() == 3 && !vs.contains(c.getInput(0))) {
            String other = vs.contains(c.getInput(1)) ? c.getInput(2) : vs.contains(c.getInput(2)) ? c.getInput(1) : null;
            return other != null && downstream.contains(other) ? c.getOutput(0) : null;
        }
        return null;
    }
}
