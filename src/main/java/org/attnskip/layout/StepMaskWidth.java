package org.attnskip.layout;

import ai.onnx.proto.OnnxMl.AttributeProto;
import ai.onnx.proto.OnnxMl.GraphProto;
import ai.onnx.proto.OnnxMl.NodeProto;
import ai.onnx.proto.OnnxMl.TensorProto;
import org.attnskip.onnx.Attributes;
import org.attnskip.onnx.Graph;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

import static org.attnskip.layout.GroupQueryAttentionSlots.COS_CACHE;
import static org.attnskip.layout.GroupQueryAttentionSlots.SEQLENS_K;
import static org.attnskip.layout.GroupQueryAttentionSlots.TOTAL_SEQUENCE_LENGTH;

/**
 * How wide a decode step's attention mask may be: wider than the positions used (ones, then zeros)
 * only where the graph reads the mask as lengths and nothing else, GroupQueryAttention's seqlens_k
 * from its sum and total_sequence_length from its width. A graph that also derives positions or a
 * bias from the mask would read the zeros, so there the mask stays as wide as the positions. The op
 * refuses a total_sequence_length beyond the positions of the rotary tables it applies itself
 * (cos_cache, input 7, when do_rotary is 1); nothing else bounds it but the cache's capacity.
 */
public final class StepMaskWidth {
    /** No bound from the graph: the cache's capacity decides. */
    public static final long UNBOUNDED = Long.MAX_VALUE;

    /** Ops that turn the mask into lengths: what exporters put between the mask and the attention's length inputs. */
    private static final Set<String> LENGTH_OPS = Set.of("Cast", "ReduceSum", "Sub", "Add", "Shape", "Gather", "Squeeze",
            "Unsqueeze", "Reshape", "Identity");

    private StepMaskWidth() {
    }

    /**
     * The widest mask a decode step may take: 0 when the graph reads {@code mask} (its input's name)
     * for more than lengths, or when a rotary table the op applies is computed in the graph (its
     * length is not known before a run); else the positions of the smallest such table, or
     * {@link #UNBOUNDED} when the op applies none.
     */
    public static long limit(Graph graph, String mask) {
        if (mask != null && !readAsLengthsOnly(graph, mask)) {
            return 0;
        }
        long limit = UNBOUNDED;
        for (NodeProto n : graph.nodes()) {
            if (!GroupQueryAttentionSlots.is(n) || Attributes.intOf(n, "do_rotary", 0) == 0
                    || n.getInputCount() <= COS_CACHE || n.getInput(COS_CACHE).isEmpty()) {
                continue;
            }
            TensorProto cos = graph.initializer(n.getInput(COS_CACHE)).orElse(null);
            if (cos == null || cos.getDimsCount() != 2) {
                return 0;
            }
            limit = Math.min(limit, cos.getDims(0));
        }
        return limit;
    }

    /**
     * Whether every use of the mask, and of what length arithmetic makes of it, is a GroupQueryAttention
     * length input, subgraphs (If branches) included. An Equal ends a path too: comparing the total
     * length with a sequence length is the op's own first-prompt test (attnskip's single-input freeze
     * spells it out), and a decode step is no first prompt whatever the mask's width.
     */
    static boolean readAsLengthsOnly(Graph graph, String mask) {
        Map<String, List<Use>> uses = new HashMap<>();
        List<NodeProto> all = new ArrayList<>();
        graph.nodes().forEach(n -> collect(n, all));
        for (NodeProto n : all) {
            for (int i = 0; i < n.getInputCount(); i++) {
                uses.computeIfAbsent(n.getInput(i), k -> new ArrayList<>()).add(new Use(n, i));
            }
        }
        Deque<String> todo = new ArrayDeque<>(List.of(mask));
        Set<String> seen = new HashSet<>(todo);
        while (!todo.isEmpty()) {
            String value = todo.pop();
            if (graph.isGraphOutput(value)) {
                return false;
            }
            for (Use use : uses.getOrDefault(value, List.of())) {
                NodeProto n = use.node();
                boolean lengthInput = GroupQueryAttentionSlots.is(n)
                        && (use.input() == SEQLENS_K || use.input() == TOTAL_SEQUENCE_LENGTH);
                if (lengthInput || n.getOpType().equals("Equal")) {
                    continue;
                }
                // a Where may choose between lengths (the single-input freeze's writing call takes 0 on a
                // first prompt); one that decides by a mask-derived condition reads more than lengths
                boolean chosenLength = n.getOpType().equals("Where") && use.input() > 0;
                if (!chosenLength && (!LENGTH_OPS.contains(n.getOpType()) || !n.getDomain().isEmpty())) {
                    return false;
                }
                for (String out : n.getOutputList()) {
                    if (!out.isEmpty() && seen.add(out)) {
                        todo.add(out);
                    }
                }
            }
        }
        return true;
    }

    private record Use(NodeProto node, int input) {
    }

    /** The node and the nodes of its subgraphs, which may read values of the outer graph by name. */
    private static void collect(NodeProto n, List<NodeProto> into) {
        into.add(n);
        for (AttributeProto a : n.getAttributeList()) {
            if (a.hasG()) {
                a.getG().getNodeList().forEach(m -> collect(m, into));
            }
            for (GraphProto g : a.getGraphsList()) {
                g.getNodeList().forEach(m -> collect(m, into));
            }
        }
    }
}
