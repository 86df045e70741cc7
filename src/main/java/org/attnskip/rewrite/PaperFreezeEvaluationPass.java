package org.attnskip.rewrite;

import ai.onnx.proto.OnnxMl.NodeProto;
import org.attnskip.layout.AttentionBlock;
import org.attnskip.layout.AttentionKind;
import org.attnskip.layout.DecoderLayout;
import org.attnskip.layout.LayerLayout;
import org.attnskip.onnx.BadInputException;
import org.attnskip.onnx.Graph;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * freeze, paper flavour, evaluation form ({@link FreezeForm#EVALUATION}; {@link PaperFreezeDeployablePass} is the
 * deployable one): previous tokens stop at layer k. For every layer i > k, the K/V of each token are
 * computed from its residual stream at the input of layer k (through layer i's own norm, K/V
 * projections and rotary), and that is what the cache stores. A token attends to the frozen K/V
 * of the tokens before it and to its own normal K/V. Layer k itself is exact (its input is h_k).
 *
 * The graph computes this for every position at once, so a prefill gives each position the
 * logits it would have as the last token, and token-by-token decoding with the cache gives the
 * same numbers: the scores of the own-token column come from the normal K, every other column
 * from the frozen K, and likewise for V. This needs the scores and probabilities, so it works on
 * unfused attention only; a fused attention op gets a clear refusal.
 */
public final class PaperFreezeEvaluationPass implements RewritePass {
    @Override
    public ChangeReport apply(Graph g, DecoderLayout layout, LayerSelection selection) {
        int k = selection.frozenFrom();
        int nodesBefore = g.nodes().size();
        int L = layout.numLayers();
        for (int i = k + 1; i < L; i++) {
            check(layout.layer(i));
        }
        List<Runnable> outputRenames = new ArrayList<>();
        int added = 0;
        for (int i = k + 1; i < L; i++) {
            g.toposort(); // cloning walks nodes in order
            added += freezeLayer(g, layout.layer(i), layout.layer(k).residualIn(), outputRenames);
        }
        outputRenames.forEach(Runnable::run);
        g.cleanup();
        g.toposort();
        int removed = nodesBefore + added - g.nodes().size();
        List<String> notes = List.of("exact for every position: own-token K/V normal, earlier tokens' K/V from layer "
                + k + "'s input; costs one extra scores MatMul per frozen layer (prefill slicing not applied)");
        return new ChangeReport(Mode.FREEZE, selection.threshold(), List.copyOf(selection.layers()),
                k + 1 < L ? k + 1 : -1, removed, added, 0, 0, 0,
                layout.kvBytesPerToken(), layout.kvBytesPerToken(), List.of(), List.of(), notes);
    }

    private static void check(LayerLayout layer) {
        AttentionBlock a = layer.attention();
        if (a.kind() == AttentionKind.UNFUSED && a.scoresMatMul() != null && a.valuesMatMul() == null) {
            throw new BadInputException("freeze: layer " + layer.index() + " is already frozen (its probabilities x V"
                    + " is split in two); rewrite the original model instead");
        }
        if (a.kind() != AttentionKind.UNFUSED || a.scoresMatMul() == null || a.valuesMatMul() == null) {
            throw new BadInputException("freeze: layer " + layer.index() + " uses " + a.kind().label
                    + ", which hides the attention scores and probabilities; freeze needs unfused attention"
                    + " (attnskip exports, torch.onnx and optimum exports)");
        }
        if (a.normSharedWithPreviousAdd()) {
            throw new BadInputException("freeze: layer " + layer.index() + "'s input norm is fused with the previous"
                    + " residual add (" + a.norm().getOpType() + "); cannot recompute it from layer k's input");
        }
    }

    private static int freezeLayer(Graph g, LayerLayout layer, String hK, List<Runnable> outputRenames) {
        int before = g.nodes().size();
        AttentionBlock a = layer.attention();
        NodeEmitter e = new NodeEmitter(g, "/attnskip/freeze/layers." + layer.index());
        NodeProto scores = a.scoresMatMul();
        NodeProto values = a.valuesMatMul();
        String kSide = scores.getInput(1);
        String vSide = values.getInput(1);

        // 1. The K/V side of the layer, recomputed from h_k.
        List<String> targets = new ArrayList<>(List.of(kSide, vSide));
        targets.addAll(layer.kv().outputs());
        Map<String, String> frozen = SubgraphClone.copy(g, Map.of(layer.residualIn(), hK), targets, false, Set.of(),
                "/attnskip/freeze/layers." + layer.index() + "/frozen");
        String kFrozen = frozen.getOrDefault(kSide, kSide);
        String vFrozen = frozen.getOrDefault(vSide, vSide);

        // 2. Own-token column: normal; all others: frozen.
        String sOrig = scores.getOutput(0);
        List<NodeProto> scoreReaders = new ArrayList<>(g.consumers(sOrig));
        String eye = ownTokenColumns(e, sOrig);
        String sFrozen = e.op("MatMul", scores.getInput(0), kFrozen);
        String sMixed = e.op("Where", eye, sOrig, sFrozen);
        for (NodeProto r : scoreReaders) {
            g.renameInput(r, sOrig, sMixed);
        }

        String probs = values.getInput(0);
        String out = values.getOutput(0);
        List<NodeProto> outReaders = new ArrayList<>(g.consumers(out));
        String zeros = e.op("Sub", probs, probs);
        String own = e.op("Where", eye, probs, zeros);
        String others = e.op("Where", eye, zeros, probs);
        String mixed = e.op("Add", e.op("MatMul", own, vSide), e.op("MatMul", others, vFrozen));
        for (NodeProto r : outReaders) {
            g.renameInput(r, out, mixed);
        }

        // 3. The cache stores the frozen K/V under the public present names (done last: renames touch every node).
        for (String present : layer.kv().outputs()) {
            String clone = frozen.get(present);
            if (clone == null) {
                throw new BadInputException("freeze: layer " + layer.index() + ": cannot trace '" + present
                        + "' back to the layer's input");
            }
            outputRenames.add(() -> {
                g.renameValue(present, g.freshName(present + "_unfrozen"));
                g.renameValue(clone, present);
            });
        }
        return g.nodes().size() - before;
    }

    /** [S, T] boolean, true at (t, T - S + t): the column of each query's own token. */
    private static String ownTokenColumns(NodeEmitter e, String scores) {
        String total = e.dim(scores, -1);
        String queries = e.dim(scores, -2);
        String one = e.int64Scalar("one", 1);
        String zero = e.int64Scalar("zero", 0);
        String rows = e.op("Range", e.op("Sub", total, queries), total, one);
        String cols = e.op("Range", zero, total, one);
        return e.op("Equal", e.unsqueeze(rows, 1), e.unsqueeze(cols, 0));
    }
}
