package org.attnskip.rewrite;

import ai.onnx.proto.OnnxMl.AttributeProto;
import org.attnskip.onnx.Attributes;
import ai.onnx.proto.OnnxMl.NodeProto;
import ai.onnx.proto.OnnxMl.TensorShapeProto;
import ai.onnx.proto.OnnxMl.ValueInfoProto;
import org.attnskip.layout.DecoderLayout;
import org.attnskip.layout.LayerLayout;
import org.attnskip.onnx.BadInputException;
import org.attnskip.onnx.Graph;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * freeze, paper flavour ({@code --freeze-kv paper}; {@link SingleInputFreezePass} is the
 * other): layers i >= k write to the cache K/V computed from each token's stream at the input of
 * layer k, and only the last position runs layers k..L-1.
 * A prefill of S tokens therefore skips (L-k)/L of the per-token work for S-1 of them, and the
 * graph outputs the logits of the last position only ([batch, 1, vocab]). Decoding one token at a
 * time is unchanged in shape and gives the freeze semantics exactly.
 *
 * The graph must store its cache as Concat(past, new entries), as optimum-style exports do, and
 * take position_ids: the last-position copy of the upper layers is fed the last token's ids and
 * positions, and its attention reads the past, the frozen entries of the earlier prompt tokens and
 * its own normal entry.
 */
public final class PaperFreezeDeployablePass implements RewritePass {
    private record CacheWrite(String present, String past, String fresh, long axis) {
    }

    @Override
    public ChangeReport apply(Graph g, DecoderLayout layout, LayerSelection selection) {
        int k = selection.frozenFrom();
        int L = layout.numLayers();
        if (k >= L) {
            return report(selection, k, L, 0, 0, layout, List.of());
        }
        if (layout.inputIds() == null || layout.positionIds() == null) {
            throw new BadInputException("freeze with a sliced prefill needs input_ids and position_ids inputs;"
                    + " this graph has " + (layout.positionIds() == null ? "no position_ids" : "no input_ids"));
        }
        int nodesBefore = g.nodes().size();
        String hK = layout.layer(k).residualIn();
        String prefix = "/attnskip/freeze_prefill";
        NodeEmitter e = new NodeEmitter(g, prefix);

        // 1. Each layer's cache entries from h_k, for every position.
        Map<String, String> cloneInputs = new HashMap<>();
        List<String[]> presents = new ArrayList<>();
        for (int i = k; i < L; i++) {
            LayerLayout layer = layout.layer(i);
            List<CacheWrite> writes = cacheWrites(g, layer);
            Map<String, String> frozen = i == k ? Map.of()
                    : SubgraphClone.copy(g, Map.of(layer.residualIn(), hK),
                    writes.stream().map(CacheWrite::fresh).toList(), false, Set.of(), prefix + "/layers." + i + "/frozen");
            for (CacheWrite w : writes) {
                String frozenEntries = frozen.getOrDefault(w.fresh(), w.fresh());
                // the last position attends to past + frozen earlier prompt tokens + its own normal entry
                String earlier = e.op("Slice", frozenEntries, e.int64s("starts", 0), e.int64s("ends", -1), e.int64s("axes", w.axis()));
                cloneInputs.put(w.past(), e.op("Concat", new AttributeProto[] {Attributes.intAttr("axis", w.axis())}, w.past(), earlier));
                presents.add(new String[] {w.present(),
                        e.op("Concat", new AttributeProto[] {Attributes.intAttr("axis", w.axis())}, w.past(), frozenEntries)});
            }
        }

        // 2. Layers k..L-1 and the head again, for the last position only.
        cloneInputs.put(hK, lastPosition(e, hK));
        cloneInputs.put(layout.inputIds(), lastPosition(e, layout.inputIds()));
        cloneInputs.put(layout.positionIds(), lastPosition(e, layout.positionIds()));
        Map<String, String> last = SubgraphClone.copy(g, cloneInputs, List.of(layout.logits()), true, Set.of(),
                prefix + "/last");

        // 3. Public names move to the new values.
        publish(g, layout.logits(), last.get(layout.logits()), presents);
        int afterAdd = g.nodes().size();
        g.cleanup();
        g.toposort();
        int added = afterAdd - nodesBefore;
        int removed = afterAdd - g.nodes().size();
        return report(selection, k, L, removed, added, layout, List.of("prefill runs layers " + k + ".." + (L - 1)
                + " for the last position only (about " + Math.round(100.0 * (L - k) / L)
                + "% of per-token layer work skipped for the other prompt tokens); logits are [batch, 1, vocab]"));
    }

    static ChangeReport report(LayerSelection s, int k, int L, int removed, int added, DecoderLayout layout,
                                       List<String> notes) {
        return new ChangeReport(Mode.FREEZE, s.threshold(), List.copyOf(s.layers()), k + 1 < L ? k + 1 : -1, removed, added,
                0, 0, 0, layout.kvBytesPerToken(), layout.kvBytesPerToken(), List.of(), List.of(), notes);
    }

    /** Each cache output must be Concat(past input, new entries). */
    private static List<CacheWrite> cacheWrites(Graph g, LayerLayout layer) {
        List<CacheWrite> writes = new ArrayList<>();
        for (String present : layer.kv().outputs()) {
            NodeProto c = g.producer(present);
            if (c == null || !c.getOpType().equals("Concat") || c.getInputCount() != 2
                    || !layer.kv().inputs().contains(c.getInput(0))) {
                throw new BadInputException("freeze: layer " + layer.index() + "'s cache output '" + present
                        + "' is not Concat(past, new entries) (it is made by " + (c == null ? "nothing" : c.getOpType())
                        + "); use --freeze-logits all, or a graph that concatenates its cache");
            }
            long axis = Attributes.intOf(c, "axis", 0);
            writes.add(new CacheWrite(present, c.getInput(0), c.getInput(1), axis));
        }
        if (writes.isEmpty()) {
            throw new BadInputException("freeze: layer " + layer.index() + " has no KV cache outputs");
        }
        return writes;
    }

    static String lastPosition(NodeEmitter e, String value) {
        return e.op("Slice", value, e.int64s("starts", -1), e.int64s("ends", Long.MAX_VALUE), e.int64s("axes", 1));
    }

    /**
     * Moves the public names to the new values: the logits to the last-position copy's, each present
     * {name, new value} to its new value; the logits output is marked [batch, 1, vocab].
     */
    static void publish(Graph g, String logits, String lastLogits, List<String[]> presents) {
        g.renameValue(logits, g.freshName(logits + "_all_positions"));
        g.renameValue(lastLogits, logits);
        for (String[] p : presents) {
            g.renameValue(p[0], g.freshName(p[0] + "_unfrozen"));
            g.renameValue(p[1], p[0]);
        }
        markLastPositionOnly(g, logits);
    }

    static void markLastPositionOnly(Graph g, String logits) {
        ValueInfoProto old = g.valueInfo(logits).orElse(null);
        if (old == null || old.getType().getTensorType().getShape().getDimCount() < 2) {
            return;
        }
        ValueInfoProto.Builder b = old.toBuilder();
        b.getTypeBuilder().getTensorTypeBuilder().getShapeBuilder().setDim(1, TensorShapeProto.Dimension.newBuilder().setDimValue(1));
        g.replaceOutputInfo(b.build());
    }

}
