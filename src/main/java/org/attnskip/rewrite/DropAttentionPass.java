package org.attnskip.rewrite;

import ai.onnx.proto.OnnxMl.NodeProto;
import org.attnskip.layout.AttentionBlock;
import org.attnskip.layout.DecoderLayout;
import org.attnskip.layout.LayerLayout;
import org.attnskip.layout.LayoutDiscovery;
import org.attnskip.layout.ParameterCounts;
import org.attnskip.layout.StaticCache;
import org.attnskip.onnx.BadInputException;
import org.attnskip.onnx.Graph;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * drop: in the selected layers the whole attention sub-block goes (input norm, attention,
 * residual add), so h_out = h_in + MLP(norm2(h_in)), and the layer's KV inputs and outputs leave
 * the graph. Works on any layout: the stream is rewired at the residual add and everything that
 * only fed it dies in cleanup.
 */
public final class DropAttentionPass implements RewritePass {
    private final int contextLength;

    /** @param contextLength the context at which the attention FLOPs saved are reported */
    public DropAttentionPass(int contextLength) {
        this.contextLength = contextLength;
    }

    @Override
    public ChangeReport apply(Graph g, DecoderLayout layout, LayerSelection selection) {
        return drop(g, layout, selection, contextLength, Map.of());
    }

    /**
     * As above, but where {@code substitutes} names a value for a layer, that value takes the
     * attention branch's place at the layer's residual add instead of nothing (calibrated drop).
     */
    static ChangeReport drop(Graph g, DecoderLayout layout, LayerSelection selection, int contextLength,
                             Map<Integer, String> substitutes) {
        int nodesBefore = g.nodes().size();
        Map<String, Long> paramsBefore = ParameterCounts.of(g); // logical counts: an int4 weight counts K x N
        List<String> notes = new ArrayList<>();
        int added = 0;
        List<String> removedInputs = new ArrayList<>();
        List<String> removedOutputs = new ArrayList<>();

        // Top layer first: bypassing layer i makes the readers of its residual sum (layer i+1's
        // residual input) read its residual input instead, so going down, every value name the
        // layout holds for a layer still to do is still in the graph. (Node handles follow edits
        // through Graph.current in any order.)
        for (int i : new java.util.TreeSet<>(selection.layers()).descendingSet()) {
            LayerLayout layer = layout.layer(i);
            String substitute = substitutes.get(i);
            if (substitute == null) {
                added += bypassResidualAdd(g, layer);
            } else {
                NodeProto add = layer.attention().residualAdd();
                g.renameInput(add, layer.attention().branchOutput(), substitute);
            }
            for (String out : layer.kv().outputs()) {
                g.removeOutput(out);
                removedOutputs.add(out);
            }
        }
        g.cleanup();
        for (int i : selection.layers()) {
            for (String in : layout.layer(i).kv().inputs()) {
                rewireShapeReads(g, layout, selection, i, in);
                List<NodeProto> readers = g.consumers(in);
                if (!readers.isEmpty() && readOnlyForShape(g, in)) {
                    // The graph derives the past length (positions, mask) from this input's shape and no
                    // kept layer has one to offer: keep the input, its values are never read.
                    notes.add("kept input '" + in + "': the graph reads its shape (the past length), not its values");
                    continue;
                }
                if (!readers.isEmpty()) {
                    throw new BadInputException("layer " + i + ": KV input '" + in + "' is still read after the attention"
                            + " was removed; refusing to write a graph that would need it");
                }
                g.removeInput(in);
                removedInputs.add(in);
            }
        }
        // A static cache's write_indices / nonpad_kv_seqlen go with the last layer that read them.
        StaticCache.of(layout).ifPresent(cache -> {
            for (String in : java.util.Arrays.asList(cache.writeIndices(), cache.nonpadKvSeqlen())) {
                if (in != null && g.isGraphInput(in) && g.consumers(in).isEmpty()) {
                    g.removeInput(in);
                    removedInputs.add(in);
                }
            }
        });
        g.cleanup();
        g.toposort();

        long paramsRemoved = 0;
        for (Map.Entry<String, Long> e : paramsBefore.entrySet()) {
            if (!g.isInitializer(e.getKey())) {
                paramsRemoved += e.getValue();
            }
        }
        long kvAfter = selection.layers().size() == layout.numLayers() ? 0
                : LayoutDiscovery.discover(g).kvBytesPerToken();
        int removed = nodesBefore - (g.nodes().size() - added);
        long flops = attentionFlopsPerToken(layout, contextLength) * selection.layers().size();
        if (flops == 0 && !selection.isEmpty()) {
            notes.add("attention FLOPs not computed: head sizes unknown");
        }
        return new ChangeReport(Mode.DROP, selection.threshold(), List.copyOf(selection.layers()),
                selection.isEmpty() ? -1 : selection.layers().first(), removed, added, paramsRemoved, contextLength,
                flops, layout.kvBytesPerToken(), kvAfter, removedInputs, removedOutputs, notes);
    }

    /** Q, K, V, O projections plus scores and weighted sum over the context, for one token in one layer. */
    static long attentionFlopsPerToken(DecoderLayout layout, int context) {
        long d = layout.hiddenSize();
        long qDim = (long) layout.numHeads() * layout.headDim();
        long kvDim = (long) layout.numKvHeads() * layout.headDim();
        long projections = 2 * (d * qDim + 2 * d * kvDim + qDim * d);
        long mixing = 2 * 2 * (long) context * qDim;
        return projections + mixing;
    }

    /** Makes the residual sum equal the residual input. Returns the number of nodes added. */
    private static int bypassResidualAdd(Graph g, LayerLayout layer) {
        AttentionBlock attn = layer.attention();
        NodeProto add = attn.residualAdd();
        String hIn = layer.residualIn();
        if (add.getOpType().equals("Add")) {
            g.replaceUses(attn.residualSum(), hIn);
            return g.isGraphOutput(attn.residualSum()) ? 1 : 0;
        }
        // A Skip*Norm adds the branch to the stream and normalises the sum for the MLP. Without the
        // branch it is a plain norm of the stream.
        for (int o = 1; o <= 2 && o < add.getOutputCount(); o++) {
            if (!add.getOutput(o).isEmpty() && !g.consumers(add.getOutput(o)).isEmpty()) {
                throw new BadInputException("layer " + layer.index() + ": " + add.getOpType()
                        + " exposes its mean/variance to other nodes; cannot rewrite it");
            }
        }
        NodeProto norm = PlainNorm.of(g, add, hIn, add.getOutput(0));
        String sum = attn.residualSum();
        g.remove(add);
        g.add(norm);
        int added = 1;
        if (!sum.isEmpty()) {
            boolean output = g.isGraphOutput(sum);
            g.replaceUses(sum, hIn);
            added += output ? 1 : 0;
        }
        return added;
    }

    /**
     * Exporters read the past KV's shape to size masks for all layers. When a dropped layer's past
     * input is still read that way, read the same-shaped past input of a kept layer instead.
     */
    private static void rewireShapeReads(Graph g, DecoderLayout layout, LayerSelection dropped, int layer, String input) {
        List<NodeProto> readers = g.consumers(input);
        if (readers.isEmpty() || !readOnlyForShape(g, input)) {
            return;
        }
        int slot = layout.layer(layer).kv().inputs().indexOf(input);
        for (LayerLayout kept : layout.layers()) {
            if (dropped.layers().contains(kept.index()) || kept.kv().inputs().size() <= slot) {
                continue;
            }
            String substitute = kept.kv().inputs().get(slot);
            var droppedType = g.valueInfo(input).map(v -> v.getType()).orElse(null);
            var keptType = g.valueInfo(substitute).map(v -> v.getType()).orElse(null);
            if (droppedType != null && droppedType.equals(keptType)) {
                for (NodeProto reader : readers) {
                    g.renameInput(reader, input, substitute);
                }
                return;
            }
        }
    }

    /** Ops that keep a tensor's shape information while passing it on to a Shape node. */
    private static final java.util.Set<String> SHAPE_CARRIERS = java.util.Set.of("Gather", "Slice", "Squeeze",
            "Unsqueeze", "Transpose", "Reshape", "Identity", "Cast");

    /** True when every path from the value ends in a Shape node: its contents never matter. */
    static boolean readOnlyForShape(Graph g, String value) {
        for (NodeProto reader : g.consumers(value)) {
            if (reader.getOpType().equals("Shape") || reader.getOpType().equals("Size")) {
                continue;
            }
            if (!SHAPE_CARRIERS.contains(reader.getOpType()) || !reader.getInput(0).equals(value)
                    || !readOnlyForShape(g, reader.getOutput(0))) {
                return false;
            }
        }
        return true;
    }
}
