package org.attnskip.rewrite;

import ai.onnx.proto.OnnxMl.AttributeProto;
import ai.onnx.proto.OnnxMl.NodeProto;
import org.attnskip.layout.AttentionKind;
import org.attnskip.layout.CacheKind;
import org.attnskip.layout.DecoderLayout;
import org.attnskip.layout.LayerLayout;
import org.attnskip.layout.StaticCache;
import org.attnskip.onnx.Attributes;
import org.attnskip.onnx.BadInputException;
import org.attnskip.onnx.Graph;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Deployable freeze, both flavours, on the opset-24 static cache ({@link StaticCache}): each layer's
 * {@code TensorScatter} writes the run's new K (or V) into a fixed buffer at {@code write_indices}
 * and the ONNX {@code Attention} reads the buffer whole.
 *
 * For every layer i >= k the pass writes the run's cache entries from h_k, through the same kind of
 * TensorScatter into the same buffer (paper: a copy of layer i's norm, K/V projections and rotary on
 * h_k, layer k's own being its normal ones; single-input: the same), and publishes that as the
 * present. Layers k..L-1 and the head then run again for the last position only: their attention
 * reads the frozen buffer into which the last position's own K/V (paper: normal; single-input: from
 * h_k) are written at write_indices + seq - 1.
 */
final class StaticCacheFreezePass {
    private static final int UPDATE = 1;
    private static final int WRITE_INDICES = 2;

    private StaticCacheFreezePass() {
    }

    /** True when every layer from k up keeps a static cache that ONNX Attention reads. */
    static boolean handles(DecoderLayout layout, int k) {
        if (k >= layout.numLayers() || StaticCache.of(layout).map(c -> c.writeIndices() == null).orElse(true)) {
            return false;
        }
        for (int i = k; i < layout.numLayers(); i++) {
            LayerLayout l = layout.layer(i);
            if (l.attention().kind() != AttentionKind.ONNX_ATTENTION || l.cacheKind() != CacheKind.STATIC) {
                return false;
            }
        }
        return true;
    }

    /**
     * Single-input freeze's evaluation form (every position's logits): every position's K/V in layers
     * >= k come from its h_k, the current one's included, so each layer's TensorScatter simply writes
     * those and every position reads them; no position needs a run of its own.
     */
    static ChangeReport applySingleInputEverywhere(Graph g, DecoderLayout layout, LayerSelection selection) {
        int k = selection.firstLayer();
        int L = layout.numLayers();
        int nodesBefore = g.nodes().size();
        String hK = layout.layer(k).residualIn();
        for (int i = k + 1; i < L; i++) {
            LayerLayout layer = layout.layer(i);
            List<NodeProto> writes = new ArrayList<>();
            for (String out : layer.kv().outputs()) {
                writes.add(g.producer(out));
            }
            List<String> updates = writes.stream().map(w -> w.getInput(UPDATE)).toList();
            Map<String, String> frozen = copyOnStream(g, layer, hK, updates, "/attnskip/freeze_single_input/layers." + i);
            for (NodeProto w : writes) {
                g.renameInput(w, w.getInput(UPDATE), frozen.get(w.getInput(UPDATE)));
            }
        }
        int afterAdd = g.nodes().size();
        g.cleanup();
        g.toposort();
        return PaperFreezeDeployablePass.report(selection, k, L, afterAdd - g.nodes().size(), afterAdd - nodesBefore, layout,
                List.of("--freeze-kv single-input: every token's K/V in layers " + k + ".." + (L - 1) + " come from layer "
                        + k + "'s input, written through the static cache's TensorScatter; logits at every position"));
    }

    static ChangeReport apply(Graph g, DecoderLayout layout, LayerSelection selection, FreezeKv flavour) {
        int k = selection.firstLayer();
        int L = layout.numLayers();
        if (layout.positionIds() == null) {
            throw new BadInputException("freeze needs a position_ids input; this static-cache graph has none");
        }
        StaticCache cache = StaticCache.of(layout).orElseThrow();
        int nodesBefore = g.nodes().size();
        String prefix = "/attnskip/freeze_" + flavour.label.replace('-', '_');
        NodeEmitter e = new NodeEmitter(g, prefix);
        String hK = layout.layer(k).residualIn();

        Map<String, String> cloneInputs = new HashMap<>();
        List<String[]> presents = new ArrayList<>();
        for (int i = k; i < L; i++) {
            LayerLayout layer = layout.layer(i);
            List<NodeProto> writes = new ArrayList<>();
            for (String out : layer.kv().outputs()) {
                writes.add(g.producer(out));
            }
            List<String> updates = writes.stream().map(w -> w.getInput(UPDATE)).toList();
            // layer k's own K/V are computed from h_k already; above it they are copied onto h_k
            Map<String, String> frozen = i > k ? copyOnStream(g, layer, hK, updates, prefix + "/layers." + i + "/frozen")
                    : identity(updates);
            for (NodeProto w : writes) {
                String entries = frozen.get(w.getInput(UPDATE));
                String present = e.op("TensorScatter", w.getAttributeList().toArray(new AttributeProto[0]),
                        w.getInput(0), entries, w.getInput(WRITE_INDICES));
                cloneInputs.put(w.getInput(0), present);
                presents.add(new String[] {w.getOutput(0), present});
                if (flavour == FreezeKv.SINGLE_INPUT) {
                    // the last position's own K/V come from h_k too: the copy writes them, it does not recompute them
                    cloneInputs.put(w.getInput(UPDATE), PaperFreezeDeployablePass.lastPosition(e, entries));
                }
            }
        }
        // The last position's own entries go at write_indices + seq - 1 of the frozen buffers.
        String seq = e.op("Shape", new AttributeProto[] {Attributes.intAttr("start", 1), Attributes.intAttr("end", 2)},
                layout.inputIds());
        String last = e.op("Add", cache.writeIndices(), e.op("Sub", seq, e.int64s("one", 1)));
        cloneInputs.put(cache.writeIndices(), last);
        cloneInputs.put(hK, PaperFreezeDeployablePass.lastPosition(e, hK));
        cloneInputs.put(layout.positionIds(), PaperFreezeDeployablePass.lastPosition(e, layout.positionIds()));
        g.toposort();
        Map<String, String> copy = SubgraphClone.copy(g, cloneInputs, List.of(layout.logits()), true, Set.of(), prefix + "/last");

        PaperFreezeDeployablePass.publish(g, layout.logits(), copy.get(layout.logits()), presents);
        int afterAdd = g.nodes().size();
        g.cleanup();
        g.toposort();
        String kv = flavour == FreezeKv.PAPER ? "the last token attends to its own normal K/V"
                : "every token's K/V in layers " + k + ".." + (L - 1) + " come from layer " + k + "'s input";
        return PaperFreezeDeployablePass.report(selection, k, L, afterAdd - g.nodes().size(), afterAdd - nodesBefore, layout,
                List.of("--freeze-kv " + flavour.label + ": " + kv + "; frozen K/V written through the static cache's"
                                + " TensorScatter",
                        "prefill runs layers " + k + ".." + (L - 1) + " for the last position only; logits are [batch, 1, vocab]"));
    }

    private static Map<String, String> identity(List<String> values) {
        Map<String, String> same = new HashMap<>();
        values.forEach(v -> same.put(v, v));
        return same;
    }

    /** Copies the computation of targets from layer's input norm, run on hK instead of its own input. */
    private static Map<String, String> copyOnStream(Graph g, LayerLayout layer, String hK, List<String> targets, String prefix) {
        if (layer.attention().normSharedWithPreviousAdd()) {
            throw new BadInputException("freeze: layer " + layer.index() + "'s input norm is fused with the previous"
                    + " residual add; not supported on a static-cache graph");
        }
        return SubgraphClone.copy(g, Map.of(layer.residualIn(), hK), targets, false, Set.of(), prefix);
    }
}
