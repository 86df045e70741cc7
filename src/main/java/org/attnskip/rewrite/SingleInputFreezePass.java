package org.attnskip.rewrite;

import org.attnskip.layout.DecoderLayout;
import org.attnskip.onnx.BadInputException;
import org.attnskip.onnx.Graph;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * freeze, single-input flavour ({@code --freeze-kv single-input}, SwiftKV's SingleInputKV): in every
 * layer i >= k, every position's K/V, the current token's included, come from that position's
 * stream at the input of layer k, through layer i's own norm, K/V projections and rotary. The K/V
 * projections of all those layers run as one MatMul on h_k ({@link BatchedKvProjection}), so a
 * decode step does no more work than the original graph's.
 *
 * This is a causal model, so the evaluation form (every position's logits) is just that rewrite.
 * The deployable form also runs layers k..L-1 and the head for the last position only: the
 * earlier positions need nothing from those layers but their K/V, which h_k already gives.
 */
public final class SingleInputFreezePass implements RewritePass {
    private final boolean lastPositionOnly;

    /** @param form deployable: logits [batch, 1, vocab]; evaluation: every position scored */
    public SingleInputFreezePass(FreezeForm form) {
        this.lastPositionOnly = form == FreezeForm.DEPLOYABLE;
    }

    @Override
    public ChangeReport apply(Graph g, DecoderLayout layout, LayerSelection selection) {
        int k = selection.frozenFrom();
        int L = layout.numLayers();
        if (k >= L) {
            return PaperFreezeDeployablePass.report(selection, k, L, 0, 0, layout, List.of());
        }
        if (lastPositionOnly && (layout.inputIds() == null || layout.positionIds() == null)) {
            throw new BadInputException("freeze with a sliced prefill needs input_ids and position_ids inputs;"
                    + " this graph has " + (layout.positionIds() == null ? "no position_ids" : "no input_ids")
                    + "; use --freeze-logits all");
        }
        int nodesBefore = g.nodes().size();
        List<BatchedKvProjection.AttentionOperands> operands = BatchedKvProjection.apply(g, layout, k);
        List<String> notes = new ArrayList<>();
        notes.add("single-input K/V: layers " + k + ".." + (L - 1) + " take every position's K/V from layer " + k
                + "'s input, projected by one MatMul");
        if (lastPositionOnly) {
            String prefix = "/attnskip/single_input_last";
            NodeEmitter e = new NodeEmitter(g, prefix);
            String hK = layout.layer(k).residualIn();
            Map<String, String> inputs = new HashMap<>();
            // every position's K/V are already made from h_k: the last-position copy reads them as they are
            for (BatchedKvProjection.AttentionOperands op : operands) {
                inputs.put(op.keys(), op.keys());
                inputs.put(op.values(), op.values());
            }
            inputs.put(hK, PaperFreezeDeployablePass.lastPosition(e, hK));
            inputs.put(layout.inputIds(), PaperFreezeDeployablePass.lastPosition(e, layout.inputIds()));
            inputs.put(layout.positionIds(), PaperFreezeDeployablePass.lastPosition(e, layout.positionIds()));
            g.toposort();
            Map<String, String> last = SubgraphClone.copy(g, inputs, List.of(layout.logits()), true, Set.of(), prefix);
            PaperFreezeDeployablePass.publish(g, layout.logits(), last.get(layout.logits()), List.of());
            notes.add("prefill runs layers " + k + ".." + (L - 1) + " for the last position only (about "
                    + Math.round(100.0 * (L - k) / L) + "% of per-token layer work skipped for the other prompt tokens);"
                    + " logits are [batch, 1, vocab]");
        }
        int afterAdd = g.nodes().size();
        g.cleanup();
        g.toposort();
        return PaperFreezeDeployablePass.report(selection, k, L, afterAdd - g.nodes().size(), afterAdd - nodesBefore, layout,
                List.copyOf(notes));
    }
}
