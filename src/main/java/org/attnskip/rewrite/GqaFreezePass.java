package org.attnskip.rewrite;

import ai.onnx.proto.OnnxMl.AttributeProto;
import ai.onnx.proto.OnnxMl.NodeProto;
import ai.onnx.proto.OnnxMl.TensorProto;
import org.attnskip.layout.AttentionBlock;
import org.attnskip.layout.AttentionKind;
import org.attnskip.layout.DecoderLayout;
import org.attnskip.layout.LayerLayout;
import org.attnskip.layout.LayoutDiscovery;
import org.attnskip.onnx.Attributes;
import org.attnskip.onnx.BadInputException;
import org.attnskip.onnx.Graph;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

import static org.attnskip.layout.GroupQueryAttentionSlots.COS_CACHE;
import static org.attnskip.layout.GroupQueryAttentionSlots.PAST_KEY;
import static org.attnskip.layout.GroupQueryAttentionSlots.PAST_VALUE;
import static org.attnskip.layout.GroupQueryAttentionSlots.SEQLENS_K;
import static org.attnskip.layout.GroupQueryAttentionSlots.SIN_CACHE;

/**
 * Freeze, both flavours, where the attention is ONNX Runtime's {@code com.microsoft::GroupQueryAttention}
 * (the model builder's graphs and {@code export --graph fused}): Q, K and V of the current positions
 * in ([batch, seq, heads * head_dim], K not yet rotated when the op rotates itself), the past in,
 * the present out, possibly in one buffer that the op writes in place. The op numbers the new
 * positions itself from {@code seqlens_k}: position p = seqlens_k + 1 - seq + j.
 * <p>
 * A packed q|k|v projection is split first ({@link PackedQkvSplit}). Then, for layers i >= k:
 * <ul>
 * <li><b>single-input</b>: every position's K/V come from h_k ({@link BatchedKvProjection}). The
 * deployable form runs layers k..L-1 for the last position only, and each of their attentions
 * takes the K/V of all current positions with a query padded by zero rows in front of the last
 * position's: one op call writes every new cache entry (in place where the buffer is shared). In a
 * first prompt of several positions that call scores each row against one key only and the last
 * position's attention is a one-row call over the cache it wrote ({@link FirstPromptLastRow});
 * elsewhere (decode steps, later prompts) the writing call's last row is the attention. A decode
 * step is the original graph's with the K/V projections batched, plus one {@code If} per layer; a
 * first prompt skips the layers' projections, MLP and attention for all but the last position,
 * except the K/V projections and the cache write.</li>
 * <li><b>paper</b>: the cache entries are the K/V of layer i recomputed from h_k (rotated here, at
 * the op's positions, when the op rotates its own K), appended to the past by Concat; the last
 * position attends to the past, the frozen earlier entries and its own normal K/V in a one-row op
 * call. The cache is therefore not updated in place: the session keeps a growing cache.</li>
 * </ul>
 * The evaluation form (every position's logits) exists for single-input only: paper freeze mixes
 * normal and frozen keys per query, which needs the attention scores that this op hides.
 */
final class GqaFreezePass {
    private GqaFreezePass() {
    }

    static boolean handles(DecoderLayout layout, int k) {
        for (int i = Math.max(k, 0); i < layout.numLayers(); i++) {
            if (layout.layer(i).attention().kind() != AttentionKind.GROUP_QUERY_ATTENTION) {
                return false;
            }
        }
        return k >= 0 && k < layout.numLayers();
    }

    static ChangeReport apply(Graph g, DecoderLayout original, LayerSelection selection, FreezeKv flavour,
                              boolean allPositions) {
        int k = selection.firstLayer();
        int L = original.numLayers();
        if (flavour == FreezeKv.PAPER && allPositions) {
            throw new BadInputException("freeze --freeze-kv paper --freeze-logits all: layer " + k + " uses "
                    + AttentionKind.GROUP_QUERY_ATTENTION.label + ", which hides the attention scores that the evaluation"
                    + " form mixes per query; use --freeze-logits last, --freeze-kv single-input, or an unfused export");
        }
        if (!allPositions && original.inputIds() == null) {
            throw new BadInputException("freeze with a sliced prefill needs an input_ids input; use --freeze-logits all");
        }
        for (int i = k; i < L; i++) {
            check(original.layer(i));
        }
        int nodesBefore = g.nodes().size();
        if (PackedQkvSplit.apply(g, original, k)) {
            g.cleanup();
        }
        DecoderLayout layout = LayoutDiscovery.discover(g);
        List<String> notes = new ArrayList<>();
        if (flavour == FreezeKv.SINGLE_INPUT) {
            BatchedKvProjection.apply(g, layout, k);
            notes.add("single-input K/V: layers " + k + ".." + (L - 1) + " take every position's K/V from layer " + k
                    + "'s input, projected by one MatMul");
            if (!allPositions) {
                singleInputLastPosition(g, layout, k);
            }
        } else {
            paperLastPosition(g, layout, k);
            notes.add("--freeze-kv paper: the last token attends to its own normal K/V; the cache of layers " + k + ".."
                    + (L - 1) + " grows by Concat (not in place)");
        }
        if (!allPositions) {
            notes.add("prefill runs layers " + k + ".." + (L - 1) + " for the last position only"
                    + (flavour == FreezeKv.PAPER ? "" : " (their attention op still writes every new position's K/V,"
                    + " scoring each against one key in a first prompt and against all in a later one)")
                    + "; logits are [batch, 1, vocab]");
        }
        int afterAdd = g.nodes().size();
        g.cleanup();
        g.toposort();
        return PaperFreezeDeployablePass.report(selection, k, L, Math.max(0, afterAdd - g.nodes().size()),
                Math.max(0, afterAdd - nodesBefore), original, List.copyOf(notes));
    }

    private static void check(LayerLayout layer) {
        NodeProto core = layer.attention().core();
        List<String> outs = layer.kv().outputs();
        boolean ok = core.getInputCount() > SEQLENS_K + 1 && !core.getInput(PAST_KEY).isEmpty()
                && !core.getInput(PAST_VALUE).isEmpty() && core.getOutputCount() > 2 && outs.size() == 2
                && outs.equals(List.of(core.getOutput(1), core.getOutput(2)));
        if (!ok) {
            throw new BadInputException("freeze: layer " + layer.index() + "'s GroupQueryAttention does not take the past"
                    + " key and value and return the present as its cache; cannot write frozen entries");
        }
    }

    /** Layers k..L-1 and the head again for the last position; their attention writes every position's K/V. */
    private static void singleInputLastPosition(Graph g, DecoderLayout layout, int k) {
        String prefix = "/attnskip/single_input_last";
        NodeEmitter e = new NodeEmitter(g, prefix);
        String hK = layout.layer(k).residualIn();
        Map<String, String> inputs = lastPositionInputs(e, layout, k);
        for (int i = k; i < layout.numLayers(); i++) {
            // the op's K/V as the batched projection left them (it renames a bias-free projection's output)
            NodeProto core = g.producer(layout.layer(i).attention().core().getOutput(0));
            inputs.put(core.getInput(1), core.getInput(1));
            inputs.put(core.getInput(2), core.getInput(2));
        }
        g.toposort();
        Map<String, String> last = SubgraphClone.copy(g, inputs, List.of(layout.logits()), true, Set.of(), prefix);
        List<String[]> presents = new ArrayList<>();
        FirstPromptLastRow firstPrompt = null;
        String zeroRows = null;
        for (int i = k; i < layout.numLayers(); i++) {
            NodeProto core = layout.layer(i).attention().core();
            String out = last.get(core.getOutput(0));
            NodeProto copy = g.producer(out);
            // zero query rows for the earlier positions: the op then takes all their K/V in one call
            if (zeroRows == null) {
                zeroRows = zeroRows(g, e, copy.getInput(0), hK, layout.logits());
            }
            String padded = e.op("Concat", new AttributeProto[] {Attributes.intAttr("axis", 1)}, zeroRows, copy.getInput(0));
            List<NodeProto> readers = new ArrayList<>(g.consumers(out));
            String lastRow;
            if (FirstPromptLastRow.applies(copy)) {
                if (firstPrompt == null) {
                    firstPrompt = new FirstPromptLastRow(g, e, hK, copy);
                }
                NodeProto writer = copy.toBuilder().setInput(0, padded).setInput(SEQLENS_K, firstPrompt.writerSeqlens()).build();
                g.replace(copy, writer);
                lastRow = firstPrompt.lastRow(writer, copy.getInput(0), core.getOutput(1), core.getOutput(2));
            } else {
                g.replace(copy, copy.toBuilder().setInput(0, padded).build());
                lastRow = PaperFreezeDeployablePass.lastPosition(e, out);
            }
            for (NodeProto r : readers) {
                g.renameInput(r, out, lastRow);
            }
            presents.add(new String[] {core.getOutput(1), last.get(core.getOutput(1))});
            presents.add(new String[] {core.getOutput(2), last.get(core.getOutput(2))});
        }
        int type = floatType(g, layout.logits());
        PaperFreezeDeployablePass.publish(g, layout.logits(), last.get(layout.logits()), presents);
        if (firstPrompt != null) {
            firstPrompt.finish(type);
        }
    }

    /**
     * seq - 1 zero rows of a one-row query's shape, which every layer's query is: Concat(these, q)
     * is what layout discovery walks through to the Q projection, as through any Concat with a constant.
     */
    private static String zeroRows(Graph g, NodeEmitter e, String query, String stream, String logits) {
        String earlier = e.op("Sub", e.dim(stream, 1), e.int64Scalar("one", 1));
        String shape = e.op("Concat", new AttributeProto[] {Attributes.intAttr("axis", 0)},
                e.op("Slice", e.op("Shape", query), e.int64s("starts", 0), e.int64s("ends", 1)), e.unsqueeze(earlier, 0),
                e.op("Slice", e.op("Shape", query), e.int64s("starts", 2), e.int64s("ends", 3)));
        int type = floatType(g, logits);
        TensorProto zero = type == TensorProto.DataType.FLOAT16_VALUE
                ? org.attnskip.onnx.Tensors.float16Tensor("value", new long[] {1}, new float[] {0f})
                : org.attnskip.onnx.Tensors.floatTensor("value", new long[] {1}, new float[] {0f});
        return e.op("ConstantOfShape", new AttributeProto[] {Attributes.tensorAttr("value", zero)}, shape);
    }

    /** The graph's float type: that of its logits. */
    private static int floatType(Graph g, String logits) {
        return g.valueInfo(logits).map(v -> v.getType().getTensorType().getElemType())
                .orElse(TensorProto.DataType.FLOAT_VALUE);
    }

    /**
     * Each layer's cache entries from h_k (K rotated here when the op rotates its own), appended by
     * Concat; layers k..L-1 run again for the last position, whose attention reads the past plus the
     * earlier positions' frozen entries and takes its own normal K/V as the new one.
     */
    private static void paperLastPosition(Graph g, DecoderLayout layout, int k) {
        String prefix = "/attnskip/freeze_paper";
        NodeEmitter e = new NodeEmitter(g, prefix);
        String hK = layout.layer(k).residualIn();
        Map<String, String> inputs = lastPositionInputs(e, layout, k);
        List<String[]> presents = new ArrayList<>();
        String positions = null;
        for (int i = k; i < layout.numLayers(); i++) {
            LayerLayout layer = layout.layer(i);
            NodeProto core = layer.attention().core();
            String keys = core.getInput(1);
            String values = core.getInput(2);
            if (i > k) {
                g.toposort();
                Map<String, String> copy = FreezeCachedAttentionPass.copyOnStream(g, layer, hK, List.of(keys, values),
                        prefix + "/layers." + i + "/frozen");
                keys = copy.get(keys);
                values = copy.get(values);
            }
            if (Attributes.intOf(core, "do_rotary", 0) != 0) {
                if (positions == null) {
                    positions = positions(e, core.getInput(SEQLENS_K), hK);
                }
                keys = rotate(g, e, core, keys, positions);
            }
            String[] fresh = {keys, values};
            for (int s = 0; s < 2; s++) {
                String past = core.getInput(PAST_KEY + s);
                String entries = FreezeCachedAttentionPass.cacheLayout(e, fresh[s], layout);
                String earlier = e.op("Slice", entries, e.int64s("starts", 0), e.int64s("ends", -1), e.int64s("axes", 2));
                inputs.put(past, concat(e, past, earlier));
                presents.add(new String[] {core.getOutput(1 + s), concat(e, past, entries)});
            }
        }
        g.toposort();
        Map<String, String> last = SubgraphClone.copy(g, inputs, List.of(layout.logits()), true, Set.of(), prefix + "/last");
        PaperFreezeDeployablePass.publish(g, layout.logits(), last.get(layout.logits()), presents);
    }

    /** The last position of h_k (and of layer k's fused norm), of the token ids and of the positions. */
    private static Map<String, String> lastPositionInputs(NodeEmitter e, DecoderLayout layout, int k) {
        Map<String, String> inputs = new HashMap<>();
        AttentionBlock first = layout.layer(k).attention();
        String hK = layout.layer(k).residualIn();
        inputs.put(hK, PaperFreezeDeployablePass.lastPosition(e, hK));
        if (first.normSharedWithPreviousAdd()) {
            // layer k's norm is the previous layer's residual add: its output is not computed from h_k
            inputs.put(first.normOutput(), PaperFreezeDeployablePass.lastPosition(e, first.normOutput()));
        }
        inputs.put(layout.inputIds(), PaperFreezeDeployablePass.lastPosition(e, layout.inputIds()));
        if (layout.positionIds() != null) {
            inputs.put(layout.positionIds(), PaperFreezeDeployablePass.lastPosition(e, layout.positionIds()));
        }
        return inputs;
    }

    /**
     * [batch, seq] int64, the positions GroupQueryAttention gives the current rows:
     * seqlens_k + 1 - seq + j, from 0 in a first prompt (where the op ignores seqlens_k).
     */
    private static String positions(NodeEmitter e, String seqlensK, String stream) {
        String seq = e.dim(stream, 1);
        String total = e.op("Add", e.op("Cast", new AttributeProto[] {Attributes.intAttr("to", TensorProto.DataType.INT64_VALUE)},
                seqlensK), e.int64Scalar("one", 1));
        String start = e.op("Max", e.op("Sub", total, seq), e.int64Scalar("zero", 0));
        String offsets = e.op("Range", e.int64Scalar("zero", 0), seq, e.int64Scalar("one", 1));
        return e.op("Add", e.unsqueeze(start, 1), e.unsqueeze(offsets, 0));
    }

    /** com.microsoft::RotaryEmbedding of the K rows, with the op's own cos/sin caches and pairing. */
    private static String rotate(Graph g, NodeEmitter e, NodeProto core, String keys, String positions) {
        if (core.getInputCount() <= SIN_CACHE || core.getInput(COS_CACHE).isEmpty()) {
            throw new BadInputException("freeze: " + core.getName() + " rotates without cos/sin caches; cannot rotate"
                    + " frozen keys the same way");
        }
        String name = g.freshName("/attnskip/freeze_paper/RotaryEmbedding");
        String out = g.freshName(name + "_output_0");
        g.add(NodeProto.newBuilder().setOpType("RotaryEmbedding").setDomain("com.microsoft").setName(name)
                .addInput(keys).addInput(positions).addInput(core.getInput(COS_CACHE)).addInput(core.getInput(SIN_CACHE))
                .addOutput(out)
                .addAttribute(Attributes.intAttr("interleaved", Attributes.intOf(core, "rotary_interleaved", 0)))
                .addAttribute(Attributes.intAttr("num_heads", Attributes.intOf(core, "kv_num_heads", 0)))
                .build());
        return out;
    }

    private static String concat(NodeEmitter e, String past, String entries) {
        return e.op("Concat", new AttributeProto[] {Attributes.intAttr("axis", 2)}, past, entries);
    }
}
