package org.attnskip.rewrite;

import ai.onnx.proto.OnnxMl.AttributeProto;
import ai.onnx.proto.OnnxMl.NodeProto;
import org.attnskip.layout.AttentionBlock;
import org.attnskip.layout.AttentionKind;
import org.attnskip.layout.DecoderLayout;
import org.attnskip.layout.LayerLayout;
import org.attnskip.onnx.Attributes;
import org.attnskip.onnx.BadInputException;
import org.attnskip.onnx.Graph;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Deployable freeze, both flavours, where the attention is one op that takes the new K/V of the
 * current positions ([batch, seq, kv_heads * head_dim], already rotated) and the past
 * ([batch, kv_heads, past, head_dim]) and returns the present itself: ONNX Runtime's
 * {@code com.microsoft::MultiHeadAttention}, as its model builder writes it.
 *
 * For every layer i >= k the pass computes the cache entries of the current positions from h_k
 * (paper: through a copy of the layer's norm, K/V projections and rotary on h_k, layer k's own
 * being its normal ones; single-input: the layer's K/V, which {@link BatchedKvProjection} already
 * makes from h_k) and writes present = Concat(past, those entries) itself. Layers k..L-1 and the
 * head then run again for the last position only: their attention reads the past plus the frozen
 * entries of the earlier prompt positions, the last row of the attention bias, and as new K/V the
 * last position's own (paper: normal; single-input: from h_k).
 */
final class FreezeCachedAttentionPass implements RewritePass {
    private final FreezeKv flavour;

    FreezeCachedAttentionPass(FreezeKv flavour) {
        this.flavour = flavour;
    }

    private static final int KEY = 1;
    private static final int VALUE = 2;
    private static final int ATTENTION_BIAS = 5;
    private static final int PAST_KEY = 6;
    private static final int PAST_VALUE = 7;

    static boolean handles(DecoderLayout layout, int k) {
        for (int i = k; i < layout.numLayers(); i++) {
            if (layout.layer(i).attention().kind() != AttentionKind.MULTI_HEAD_ATTENTION) {
                return false;
            }
        }
        return k < layout.numLayers();
    }

    @Override
    public ChangeReport apply(Graph g, DecoderLayout layout, LayerSelection selection) {
        int k = selection.firstLayer();
        int L = layout.numLayers();
        if (layout.inputIds() == null || layout.positionIds() == null) {
            throw new BadInputException("freeze needs input_ids and position_ids inputs; this graph has "
                    + (layout.positionIds() == null ? "no position_ids" : "no input_ids"));
        }
        for (int i = k; i < L; i++) {
            check(g, layout.layer(i));
        }
        int nodesBefore = g.nodes().size();
        String prefix = "/attnskip/freeze_" + flavour.label.replace('-', '_');
        NodeEmitter e = new NodeEmitter(g, prefix);
        String hK = layout.layer(k).residualIn();
        if (flavour == FreezeKv.SINGLE_INPUT) {
            BatchedKvProjection.apply(g, layout, k);
        }

        Map<String, String> cloneInputs = new HashMap<>();
        List<String[]> presents = new ArrayList<>();
        for (int i = k; i < L; i++) {
            LayerLayout layer = layout.layer(i);
            NodeProto core = g.producer(layer.kv().outputs().get(0));
            String keys = core.getInput(KEY);
            String values = core.getInput(VALUE);
            String frozenKeys = keys;
            String frozenValues = values;
            if (flavour == FreezeKv.PAPER && i > k) {
                Map<String, String> copy = copyOnStream(g, layer, hK, List.of(keys, values), prefix + "/layers." + i + "/frozen");
                frozenKeys = copy.get(keys);
                frozenValues = copy.get(values);
            } else if (flavour == FreezeKv.SINGLE_INPUT) {
                // the last position's own K/V come from h_k too: the copy reads them, it does not recompute them
                cloneInputs.put(keys, PaperFreezeDeployablePass.lastPosition(e, keys));
                cloneInputs.put(values, PaperFreezeDeployablePass.lastPosition(e, values));
            }
            int[] sides = {PAST_KEY, PAST_VALUE};
            String[] fresh = {frozenKeys, frozenValues};
            for (int s = 0; s < 2; s++) {
                String past = core.getInput(sides[s]);
                String entries = cacheLayout(e, fresh[s], layout);
                String earlier = e.op("Slice", entries, e.int64s("starts", 0), e.int64s("ends", -1), e.int64s("axes", 2));
                cloneInputs.put(past, concat(e, past, earlier));
                presents.add(new String[] {core.getOutput(s + 1), concat(e, past, entries)});
            }
            if (core.getInputCount() > ATTENTION_BIAS && !core.getInput(ATTENTION_BIAS).isEmpty()) {
                String bias = core.getInput(ATTENTION_BIAS);
                cloneInputs.put(bias, e.op("Slice", bias, e.int64s("starts", -1), e.int64s("ends", Long.MAX_VALUE),
                        e.int64s("axes", 2)));
            }
        }
        AttentionBlock firstBlock = layout.layer(k).attention();
        cloneInputs.put(hK, PaperFreezeDeployablePass.lastPosition(e, hK));
        if (firstBlock.normSharedWithPreviousAdd()) {
            // layer k's norm is the previous layer's residual add: its output is not computed from h_k
            cloneInputs.put(firstBlock.normOutput(), PaperFreezeDeployablePass.lastPosition(e, firstBlock.normOutput()));
        }
        cloneInputs.put(layout.inputIds(), PaperFreezeDeployablePass.lastPosition(e, layout.inputIds()));
        cloneInputs.put(layout.positionIds(), PaperFreezeDeployablePass.lastPosition(e, layout.positionIds()));
        g.toposort();
        Map<String, String> last = SubgraphClone.copy(g, cloneInputs, List.of(layout.logits()), true, Set.of(), prefix + "/last");

        PaperFreezeDeployablePass.publish(g, layout.logits(), last.get(layout.logits()), presents);
        int afterAdd = g.nodes().size();
        g.cleanup();
        g.toposort();
        String kv = flavour == FreezeKv.PAPER ? "the last token attends to its own normal K/V"
                : "every token's K/V in layers " + k + ".." + (L - 1) + " come from layer " + k + "'s input, by one MatMul";
        return PaperFreezeDeployablePass.report(selection, k, L, afterAdd - g.nodes().size(), afterAdd - nodesBefore, layout,
                List.of("--freeze-kv " + flavour.label + ": " + kv,
                "prefill runs layers " + k + ".." + (L - 1) + " for the last position only; logits are [batch, 1, vocab]"));
    }

    private static void check(Graph g, LayerLayout layer) {
        List<String> outs = layer.kv().outputs();
        NodeProto core = outs.isEmpty() ? null : g.producer(outs.get(0));
        boolean ok = core != null && core == layer.attention().core() && core.getInputCount() > PAST_VALUE
                && !core.getInput(KEY).isEmpty() && !core.getInput(VALUE).isEmpty()
                && !core.getInput(PAST_KEY).isEmpty() && !core.getInput(PAST_VALUE).isEmpty()
                && core.getOutputCount() > 2 && outs.size() == 2;
        if (!ok) {
            throw new BadInputException("freeze: layer " + layer.index() + "'s MultiHeadAttention does not take separate"
                    + " key, value, past key and past value and return the present; cannot write frozen entries");
        }
    }

    /** Copies the computation of targets from layer's normalised stream, run on hK instead of its own input. */
    static Map<String, String> copyOnStream(Graph g, LayerLayout layer, String hK, List<String> targets, String prefix) {
        AttentionBlock a = layer.attention();
        if (!a.normSharedWithPreviousAdd()) {
            return SubgraphClone.copy(g, Map.of(layer.residualIn(), hK), targets, false, Set.of(), prefix);
        }
        // the norm is fused with the previous residual add: rebuild it alone on h_k
        NodeProto plain = PlainNorm.of(g, a.norm(), hK, g.freshName(a.normOutput() + "/attnskip_on_h_k"));
        g.add(plain);
        g.toposort();
        return SubgraphClone.copy(g, Map.of(a.normOutput(), plain.getOutput(0)), targets, false, Set.of(), prefix);
    }

    /** [batch, seq, heads * head_dim] -> [batch, heads, seq, head_dim], the cache layout. */
    static String cacheLayout(NodeEmitter e, String x, DecoderLayout layout) {
        String split = e.op("Reshape", x, e.int64s("shape", 0, 0, layout.numKvHeads(), layout.headDim()));
        return e.op("Transpose", new AttributeProto[] {Attributes.intsAttr("perm", 0, 2, 1, 3)}, split);
    }

    private static String concat(NodeEmitter e, String past, String entries) {
        return e.op("Concat", new AttributeProto[] {Attributes.intAttr("axis", 2)}, past, entries);
    }
}
