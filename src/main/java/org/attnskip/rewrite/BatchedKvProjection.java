package org.attnskip.rewrite;

import ai.onnx.proto.OnnxMl.AttributeProto;
import ai.onnx.proto.OnnxMl.NodeProto;
import ai.onnx.proto.OnnxMl.TensorProto;
import org.attnskip.layout.AttentionBlock;
import org.attnskip.layout.AttentionKind;
import org.attnskip.layout.DecoderLayout;
import org.attnskip.layout.LayerLayout;
import org.attnskip.onnx.Attributes;
import org.attnskip.onnx.BadInputException;
import org.attnskip.onnx.DataFlow;
import org.attnskip.onnx.Graph;
import org.attnskip.onnx.Tensors;

import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/**
 * Single-input K/V: the K and V projections of layers k..L-1 all read layer k's input stream h_k,
 * as one MatMul. Layer i's K/V are norm_i(h_k) W_i = (rms(h_k) * gamma_i) W_i = rms(h_k) (gamma_i W_i),
 * so each layer's norm weight is folded into its projection weights, the weights of all layers are
 * concatenated along the output axis, and one MatMul of the un-weighted normalised h_k (layer k's own,
 * which every layer shares when their norms differ only in the weight) makes them all; a Split hands
 * each layer its K and V, which then go through the layer's own heads reshape and rotary as before.
 *
 * The folding and concatenation are nodes on initializers (Unsqueeze, Mul, Concat), which ONNX
 * Runtime folds into one constant when it loads the graph; the file stores no copy of the weights.
 */
final class BatchedKvProjection {
    private BatchedKvProjection() {
    }

    /** One layer's K or V projection: the MatMul on the normalised stream and its optional bias Add. */
    record Projection(NodeProto matMul, String weight, String bias, String output) {
    }

    /** A layer's input norm as normalised-without-weight times weight; rebuilt: a node added for this. */
    private record NormSplit(String unweighted, String weight, boolean rebuilt) {
    }

    /** The values the attention reads as K and as V (current positions, or past and current). */
    record AttentionOperands(String keys, String values) {
    }

    /**
     * Rewrites layers k..L-1 so that their K/V projections are one MatMul on h_k.
     *
     * @return the attention's K and V operands of each rewritten layer, index 0 being layer k
     */
    static List<AttentionOperands> apply(Graph g, DecoderLayout layout, int k) {
        int L = layout.numLayers();
        LayerLayout first = layout.layer(k);
        NormSplit firstNorm = splitNormWeight(g, first);
        String normalised = firstNorm.unweighted();
        List<String> weights = new ArrayList<>();
        List<String> biases = new ArrayList<>();
        List<Long> widths = new ArrayList<>();
        List<Projection> projections = new ArrayList<>();
        List<AttentionOperands> operands = new ArrayList<>();
        NodeEmitter e = new NodeEmitter(g, "/attnskip/single_input_kv");
        for (int i = k; i < L; i++) {
            LayerLayout layer = layout.layer(i);
            NormSplit norm = i == k ? firstNorm : splitNormWeight(g, layer);
            if (i != k) {
                requireSameNormalisation(g, first, firstNorm.unweighted(), layer, norm.unweighted());
                if (norm.rebuilt()) {
                    g.remove(g.producer(norm.unweighted())); // an RMS op rebuilt only for the comparison
                }
            }
            AttentionOperands op = operands(layer);
            operands.add(op);
            for (String side : List.of(op.keys(), op.values())) {
                Projection p = projection(g, layer, side);
                projections.add(p);
                weights.add(e.op("Mul", e.unsqueeze(norm.weight(), 1), p.weight()));
                biases.add(p.bias());
                widths.add(columns(g, layer, p.weight()));
            }
        }
        boolean anyBias = biases.stream().anyMatch(b -> b != null);
        if (anyBias && biases.stream().anyMatch(b -> b == null)) {
            throw new BadInputException("freeze --freeze-kv single-input: some K/V projections of layers " + k + ".."
                    + (L - 1) + " have a bias and others not; cannot batch them");
        }
        String all = e.op("MatMul", normalised, e.op("Concat", new AttributeProto[] {Attributes.intAttr("axis", 1)},
                weights.toArray(String[]::new)));
        if (anyBias) {
            all = e.op("Add", all, e.op("Concat", new AttributeProto[] {Attributes.intAttr("axis", 0)},
                    biases.toArray(String[]::new)));
        }
        String[] pieces = e.split(all, -1, widths.stream().mapToLong(Long::longValue).toArray());
        for (int j = 0; j < projections.size(); j++) {
            g.replaceUses(projections.get(j).output(), pieces[j]);
        }
        return operands;
    }

    static AttentionOperands operands(LayerLayout layer) {
        AttentionBlock a = layer.attention();
        if (a.kind() == AttentionKind.UNFUSED && a.scoresMatMul() != null && a.valuesMatMul() != null) {
            return new AttentionOperands(a.scoresMatMul().getInput(1), a.valuesMatMul().getInput(1));
        }
        NodeProto core = a.core();
        boolean separate = (a.kind() == AttentionKind.MULTI_HEAD_ATTENTION || a.kind() == AttentionKind.GROUP_QUERY_ATTENTION)
                && core.getInputCount() > 2 && !core.getInput(1).isEmpty() && !core.getInput(2).isEmpty();
        if (!separate) {
            throw new BadInputException("freeze --freeze-kv single-input: layer " + layer.index() + " uses " + a.kind().label
                    + (a.kind() == AttentionKind.FUSED_ATTENTION ? ", which projects Q, K and V inside the op"
                    : " with packed Q/K/V") + "; its K/V cannot be computed from another layer's stream");
        }
        return new AttentionOperands(core.getInput(1), core.getInput(2));
    }

    /**
     * The layer's input norm split into normalised-without-weight and weight: either spelled out,
     * ending in Mul(x, weight), or an RMS norm op (SimplifiedLayerNormalization, or its Skip form
     * fused with the previous residual add), which is rebuilt on the layer's stream with unit weight.
     */
    private static NormSplit splitNormWeight(Graph g, LayerLayout layer) {
        AttentionBlock a = layer.attention();
        NodeProto norm = a.norm();
        if (norm != null && RMS_NORMS.contains(norm.getOpType()) && norm.getOutput(0).equals(a.normOutput())) {
            String weight = norm.getInput(norm.getOpType().startsWith("Skip") ? 2 : 1);
            TensorProto w = g.initializer(weight).orElseThrow(() -> new BadInputException("freeze --freeze-kv single-input:"
                    + " layer " + layer.index() + "'s input norm weight is not a stored tensor"));
            String ones = g.freshName(weight + "/attnskip_ones");
            int n = Math.toIntExact(Tensors.elementCount(w));
            float[] one = new float[n];
            java.util.Arrays.fill(one, 1f);
            g.addInitializer(w.getDataType() == TensorProto.DataType.FLOAT16_VALUE
                    ? Tensors.float16Tensor(ones, new long[] {n}, one) : Tensors.floatTensor(ones, new long[] {n}, one));
            NodeProto plain = PlainNorm.of(g, norm.getOpType().startsWith("Skip") ? norm : asSkip(norm), layer.residualIn(),
                    g.freshName(a.normOutput() + "/attnskip_unweighted"));
            g.add(plain.toBuilder().setInput(1, ones).build());
            return new NormSplit(plain.getOutput(0), weight, true);
        }
        NodeProto mul = g.producer(a.normOutput());
        if (a.normSharedWithPreviousAdd() || mul == null || !mul.getOpType().equals("Mul") || !mul.getDomain().isEmpty()) {
            throw new BadInputException("freeze --freeze-kv single-input: layer " + layer.index() + "'s input norm ("
                    + (norm == null ? "none" : norm.getOpType()) + ") does not end in a multiplication by its"
                    + " weight; cannot fold it into the batched K/V projection");
        }
        for (int j = 0; j < 2; j++) {
            if (g.isInitializer(mul.getInput(j)) && !g.isInitializer(mul.getInput(1 - j))) {
                return new NormSplit(mul.getInput(1 - j), mul.getInput(j), false);
            }
        }
        throw new BadInputException("freeze --freeze-kv single-input: layer " + layer.index()
                + "'s input norm weight is not a stored tensor");
    }

    private static final Set<String> RMS_NORMS = Set.of("SimplifiedLayerNormalization", "SkipSimplifiedLayerNormalization");

    /** A SimplifiedLayerNormalization spelled as the Skip form PlainNorm takes apart (input, skip, weight). */
    private static NodeProto asSkip(NodeProto simplified) {
        return simplified.toBuilder().setOpType("SkipSimplifiedLayerNormalization").clearInput()
                .addInput(simplified.getInput(0)).addInput("").addInput(simplified.getInput(1)).build();
    }

    /** Layer i's norm without its weight must compute what layer k's does (same ops, same constants). */
    private static void requireSameNormalisation(Graph g, LayerLayout first, String firstValue, LayerLayout other,
                                                 String otherValue) {
        List<NodeProto> a = chain(g, firstValue, first.residualIn());
        List<NodeProto> b = chain(g, otherValue, other.residualIn());
        boolean same = a.size() == b.size();
        for (int j = 0; same && j < a.size(); j++) {
            same = sameOp(g, a.get(j), b.get(j));
        }
        if (!same) {
            throw new BadInputException("freeze --freeze-kv single-input: layers " + first.index() + " and " + other.index()
                    + " normalise differently (not only by their weight); cannot share one normalised h_k");
        }
    }

    private static List<NodeProto> chain(Graph g, String value, String stream) {
        Set<NodeProto> nodes = new DataFlow(g).backwardNodes(List.of(value), Set.of(stream));
        return g.nodes().stream().filter(nodes::contains).toList();
    }

    private static boolean sameOp(Graph g, NodeProto a, NodeProto b) {
        if (!a.getOpType().equals(b.getOpType()) || !a.getDomain().equals(b.getDomain())
                || !a.getAttributeList().equals(b.getAttributeList()) || a.getInputCount() != b.getInputCount()) {
            return false;
        }
        for (int j = 0; j < a.getInputCount(); j++) {
            TensorProto ta = g.initializer(a.getInput(j)).orElse(null);
            TensorProto tb = g.initializer(b.getInput(j)).orElse(null);
            if ((ta == null) != (tb == null) || ta != null && !ta.toBuilder().clearName().build()
                    .equals(tb.toBuilder().clearName().build())) {
                return false;
            }
        }
        return true;
    }

    /** The one MatMul with a stored weight that reads the layer's normalised stream on the way to side. */
    private static Projection projection(Graph g, LayerLayout layer, String side) {
        String normOut = layer.attention().normOutput();
        List<NodeProto> found = new ArrayList<>();
        for (NodeProto n : new DataFlow(g).backwardNodes(List.of(side), Set.of(normOut))) {
            if (n.getOpType().equals("MatMul") && n.getInput(0).equals(normOut)
                    && (g.isInitializer(n.getInput(1)) || PackedQkvSplit.sliceColumns(g, n.getInput(1)) > 0)) {
                found.add(n);
            }
        }
        if (found.size() != 1) {
            throw new BadInputException("freeze --freeze-kv single-input: layer " + layer.index() + ": expected one K or V"
                    + " projection MatMul on the normalised stream, found " + found.size());
        }
        NodeProto mm = found.get(0);
        String out = mm.getOutput(0);
        List<NodeProto> readers = g.consumers(out);
        if (readers.size() == 1 && readers.get(0).getOpType().equals("Add") && readers.get(0).getDomain().isEmpty()) {
            NodeProto add = readers.get(0);
            String other = add.getInput(0).equals(out) ? add.getInput(1) : add.getInput(0);
            if (g.isInitializer(other)) {
                return new Projection(mm, mm.getInput(1), other, add.getOutput(0));
            }
        }
        return new Projection(mm, mm.getInput(1), null, out);
    }

    private static long columns(Graph g, LayerLayout layer, String weight) {
        long sliced = PackedQkvSplit.sliceColumns(g, weight);
        if (sliced > 0) {
            return sliced;
        }
        TensorProto t = g.initializer(weight).orElseThrow();
        if (t.getDimsCount() != 2) {
            throw new BadInputException("freeze --freeze-kv single-input: layer " + layer.index() + "'s K/V weight '"
                    + weight + "' is not a matrix");
        }
        return t.getDims(1);
    }
}
