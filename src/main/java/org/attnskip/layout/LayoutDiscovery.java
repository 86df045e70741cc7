package org.attnskip.layout;

import ai.onnx.proto.OnnxMl.AttributeProto;
import ai.onnx.proto.OnnxMl.NodeProto;
import ai.onnx.proto.OnnxMl.TensorProto;
import ai.onnx.proto.OnnxMl.TensorShapeProto;
import ai.onnx.proto.OnnxMl.ValueInfoProto;
import org.attnskip.onnx.Attributes;
import org.attnskip.onnx.BadInputException;
import org.attnskip.onnx.DataFlow;
import org.attnskip.onnx.Graph;
import org.attnskip.onnx.Tensors;

import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.HashSet;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Recognises a decoder-only LLM in an ONNX graph and describes it as a {@link DecoderLayout}.
 * This is the only place that knows how exporters spell a decoder. It matches by operators and
 * data flow; node and value names are used only as hints for the model's inputs.
 */
public final class LayoutDiscovery {
    private static final Set<String> SKIP_NORMS = Set.of("SkipLayerNormalization", "SkipSimplifiedLayerNormalization");
    private static final Set<String> FUSED_NORMS = Set.of("LayerNormalization", "SimplifiedLayerNormalization",
            "RMSNormalization", "SkipLayerNormalization", "SkipSimplifiedLayerNormalization", "EmbedLayerNormalization");
    /** Ops between a normalised hidden state and the attention that do not mix tokens. */
    private static final Set<String> PROJECTION_PATH = Set.of("RotaryEmbedding", "Reshape", "Transpose", "Add", "Cast",
            "Squeeze", "Unsqueeze", "Split", "Slice", "Identity", "Div", "Mul", "Sub", "Gather", "Concat", "Neg");

    private final Graph g;
    private final DataFlow flow;

    private LayoutDiscovery(Graph g) {
        this.g = g;
        this.flow = new DataFlow(g);
    }

    /** Discovers the layout. Sorts the graph's nodes topologically as a side effect. */
    public static DecoderLayout discover(Graph graph) {
        NodeArity.check(graph);
        graph.toposort();
        return new LayoutDiscovery(graph).run(false);
    }

    /**
     * As {@link #discover}, but a graph without any attention (a rewrite dropped it in every
     * layer) is a decoder with no attending layers, whose token inputs and logits a runtime still
     * feeds and reads, rather than an error.
     */
    public static DecoderLayout discoverToRun(Graph graph) {
        NodeArity.check(graph);
        graph.toposort();
        return new LayoutDiscovery(graph).run(true);
    }

    private DecoderLayout run(boolean attentionOptional) {
        List<AttentionCores.Core> cores = AttentionCores.find(g);
        if (cores.isEmpty() && attentionOptional) {
            ModelInputs io = ModelInputs.find(g, flow);
            return new DecoderLayout("no-attention", io.hiddenSize(), 0, 0, 0, io.vocabSize(), io.inputIds(),
                    io.attentionMask(), io.positionIds(), io.logits(), io.hasLmHead(), List.of(), parameterCount());
        }
        if (cores.isEmpty()) {
            throw new BadInputException("not a decoder LLM: no attention found (looked for Attention, MultiHeadAttention,"
                    + " GroupQueryAttention and MatMul->Softmax->MatMul)");
        }
        ModelInputs io = ModelInputs.find(g, flow);
        Map<NodeProto, Integer> coreIndex = new IdentityHashMap<>();
        for (int i = 0; i < cores.size(); i++) {
            coreIndex.put(cores.get(i).node(), i);
        }
        // V reaches the attention at the probabilities x V MatMul, not at the Softmax: both mark the layer.
        Map<NodeProto, Integer> readerIndex = new IdentityHashMap<>(coreIndex);
        for (int i = 0; i < cores.size(); i++) {
            NodeProto pv = g.producer(cores.get(i).branchOutput());
            if (pv != null) {
                readerIndex.put(pv, i);
            }
        }
        Map<Integer, List<String>> kvInputs = assignKvInputs(cores, readerIndex, io);
        Map<Integer, List<String>> kvOutputs = assignKvOutputs(cores.size(), coreIndex, io, kvInputs);

        List<LayerLayout> layers = new ArrayList<>();
        for (int i = 0; i < cores.size(); i++) {
            layers.add(layer(i, cores.get(i), kvInputs.getOrDefault(i, List.of()), kvOutputs.getOrDefault(i, List.of())));
        }
        for (int i = 1; i < layers.size(); i++) {
            String prevOut = layers.get(i - 1).mlp().residualSum();
            if (!reachesThroughResidualAdds(prevOut, layers.get(i).residualIn())) {
                throw new BadInputException("layer " + i + ": its residual input is not the residual output of layer "
                        + (i - 1) + " (not a sequential pre-norm decoder)");
            }
        }
        return sizes(cores, layers, io);
    }

    /**
     * True when the stream goes from one value to the other directly or through residual adds
     * only, that is through layers whose attention a rewrite removed (h + MLP(norm(h))), or through
     * the edits attnskip's other passes make between two layers: a slice of positions (freeze's
     * last-position prefill) and a per-position choice between the stream and a value computed
     * from it (random's noise).
     */
    private boolean reachesThroughResidualAdds(String from, String to) {
        String v = from;
        for (int hops = 0; hops < 4096 && !v.isEmpty(); hops++) {
            if (v.equals(to)) {
                return true;
            }
            String next = null;
            Set<String> downstream = flow.forwardValues(streamAndItsNorm(v));
            for (NodeProto c : g.consumers(v)) {
                next = streamStep(c, v, downstream);
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
        if (p != null && SKIP_NORMS.contains(p.getOpType()) && p.getOutputCount() > 3 && p.getOutput(3).equals(v)
                && !p.getOutput(0).isEmpty()) {
            return List.of(v, p.getOutput(0));
        }
        return List.of(v);
    }

    /** The stream after consumer c, when c carries the stream v on, else null. */
    private String streamStep(NodeProto c, String v, Set<String> downstream) {
        boolean plain = c.getDomain().isEmpty();
        boolean isAdd = plain && c.getOpType().equals("Add");
        if ((isAdd || SKIP_NORMS.contains(c.getOpType())) && c.getInputCount() >= 2) {
            String other = c.getInput(0).equals(v) ? c.getInput(1) : c.getInput(0);
            if (downstream.contains(other)) {
                return isAdd ? c.getOutput(0) : (c.getOutputCount() > 3 ? c.getOutput(3) : "");
            }
            return null;
        }
        // Slice(h, starts, ends, axes) with constant bounds keeps some positions of the stream.
        if (plain && c.getOpType().equals("Slice") && c.getInput(0).equals(v) && c.getInputCount() >= 3
                && c.getInputList().subList(1, c.getInputCount()).stream().allMatch(in -> g.isInitializer(in) || isConstant(in))) {
            return c.getOutput(0);
        }
        // Where(mask, h, f(h)) or Where(mask, f(h), h): each position is the stream or computed from it.
        if (plain && c.getOpType().equals("Where") && c.getInputCount() == 3 && !c.getInput(0).equals(v)) {
            String other = c.getInput(1).equals(v) ? c.getInput(2) : c.getInput(2).equals(v) ? c.getInput(1) : null;
            return other != null && downstream.contains(other) ? c.getOutput(0) : null;
        }
        return null;
    }

    private LayerLayout layer(int i, AttentionCores.Core core, List<String> kvIn, List<String> kvOut) {
        // 1. The residual add: the first add that combines the attention branch with a value not derived from it.
        Set<String> branch = flow.forwardValues(List.of(core.branchOutput()));
        NodeProto add = null;
        String residualIn = null;
        String branchAtAdd = null;
        for (NodeProto n : g.nodes()) {
            boolean isAdd = n.getOpType().equals("Add") && n.getDomain().isEmpty();
            if (!(isAdd || SKIP_NORMS.contains(n.getOpType())) || n.getInputCount() < 2) {
                continue;
            }
            String a = n.getInput(0);
            String b = n.getInput(1);
            if (g.isInitializer(a) || g.isInitializer(b) || isConstant(a) || isConstant(b)) {
                continue;
            }
            if (branch.contains(a) && !branch.contains(b)) {
                add = n;
                branchAtAdd = a;
                residualIn = b;
                break;
            }
            if (branch.contains(b) && !branch.contains(a)) {
                add = n;
                branchAtAdd = b;
                residualIn = a;
                break;
            }
        }
        if (add == null) {
            throw new BadInputException("layer " + i + ": no residual add consumes the attention output");
        }
        String residualSum = SKIP_NORMS.contains(add.getOpType())
                ? (add.getOutputCount() > 3 ? add.getOutput(3) : "")
                : add.getOutput(0);

        // 2. The input norm: walk back from the attention's query input to the hidden state the projections read.
        String normOutput = normOutput(i, core);
        NodeProto norm = g.producer(normOutput);
        boolean normShared = norm != null && (SKIP_NORMS.contains(norm.getOpType())
                || norm.getOpType().equals("EmbedLayerNormalization"));

        // 3. The sub-block's nodes: between the stream (or the fused norm) and the add, plus the KV plumbing.
        //    A fused norm is not one of them: it is also the previous layer's residual add (or the embedding).
        Set<String> starts = new HashSet<>(List.of(residualIn, normOutput));
        starts.addAll(kvIn);
        Set<String> downstream = flow.forwardValues(starts);
        List<String> ends = new ArrayList<>(List.of(branchAtAdd));
        ends.addAll(kvOut);
        Set<NodeProto> upstream = flow.backwardNodes(ends, Set.of(residualIn));
        List<NodeProto> nodes = new ArrayList<>();
        for (NodeProto n : g.nodes()) {
            if (n == add || (n == norm && normShared)) {
                continue;
            }
            boolean inside = upstream.contains(n) && n.getOutputList().stream().anyMatch(downstream::contains);
            if (inside || (n == norm && !normShared)) {
                nodes.add(n);
            }
        }
        boolean unfused = core.kind() == AttentionKind.UNFUSED;
        AttentionBlock attention = new AttentionBlock(core.kind(), core.node(), norm, normOutput, normShared,
                List.copyOf(nodes), branchAtAdd, add, residualSum,
                unfused ? scoresMatMul(core.node()) : null, unfused ? valuesMatMul(core) : null);
        MlpBlock mlp = mlp(i, add, residualSum);
        return new LayerLayout(i, residualIn, attention, mlp, kvCache(kvIn, kvOut));
    }

    /** The probabilities x V MatMul; null when freeze has split it in two (see AttentionCores). */
    private NodeProto valuesMatMul(AttentionCores.Core core) {
        NodeProto p = g.producer(core.branchOutput());
        return p != null && p.getOpType().equals("MatMul") ? p : null;
    }

    private boolean isConstant(String value) {
        NodeProto p = g.producer(value);
        return p != null && (p.getOpType().equals("Constant") || p.getOpType().equals("ConstantOfShape"));
    }

    /** The value the Q (or packed QKV) projection reads, found by walking back from the attention. */
    private String normOutput(int layer, AttentionCores.Core core) {
        NodeProto n = core.node();
        if (core.kind() == AttentionKind.FUSED_ATTENTION) {
            return n.getInput(0); // the QKV projection happens inside the op
        }
        String v;
        if (core.kind() == AttentionKind.UNFUSED) {
            NodeProto scores = scoresMatMul(n);
            if (scores == null) {
                throw new BadInputException("layer " + layer + ": cannot find the Q.K MatMul before the Softmax");
            }
            v = scores.getInput(0);
        } else {
            v = n.getInput(0);
        }
        for (int depth = 0; depth < 24; depth++) {
            NodeProto p = g.producer(v);
            if (p == null) {
                break;
            }
            if ((p.getOpType().equals("MatMul") || p.getOpType().equals("Gemm")) && TransposedWeight.isWeight(g, p.getInput(1))) {
                return throughReshapes(p.getInput(0));
            }
            if (p.getOpType().equals("MatMulNBits") || FUSED_NORMS.contains(p.getOpType())) {
                return p.getOpType().equals("MatMulNBits") ? throughReshapes(p.getInput(0)) : v;
            }
            if (!PROJECTION_PATH.contains(p.getOpType())) {
                break;
            }
            v = firstComputedInput(p);
            if (v == null) {
                break;
            }
        }
        throw new BadInputException("layer " + layer + ": cannot find the Q projection feeding the attention");
    }

    private NodeProto scoresMatMul(NodeProto softmax) {
        String v = softmax.getInput(0);
        for (int depth = 0; depth < 8; depth++) {
            NodeProto p = g.producer(v);
            if (p == null) {
                return null;
            }
            if (p.getOpType().equals("MatMul")) {
                return p;
            }
            v = firstComputedInput(p.getOpType().equals("Where") ? dropFirstInput(p) : p);
            if (v == null) {
                return null;
            }
        }
        return null;
    }

    private static NodeProto dropFirstInput(NodeProto where) {
        return where.toBuilder().clearInput().addAllInput(where.getInputList().subList(1, where.getInputCount())).build();
    }

    /** The first input that is computed from the data (not a weight, not a constant, not shape arithmetic). */
    private String firstComputedInput(NodeProto p) {
        for (String in : p.getInputList()) {
            if (in.isEmpty() || g.isInitializer(in) || isConstant(in)) {
                continue;
            }
            NodeProto src = g.producer(in);
            if (src != null && (DataFlow.readsOnlyShape(src) || src.getOpType().equals("Concat") && isShapeArithmetic(src))) {
                continue;
            }
            return in;
        }
        return null;
    }

    private boolean isShapeArithmetic(NodeProto concat) {
        return concat.getInputList().stream().allMatch(in -> {
            NodeProto p = g.producer(in);
            return p == null ? g.isInitializer(in) : p.getOpType().equals("Unsqueeze") || p.getOpType().equals("Constant");
        });
    }

    private String throughReshapes(String v) {
        for (int depth = 0; depth < 4; depth++) {
            NodeProto p = g.producer(v);
            if (p == null || !(p.getOpType().equals("Reshape") || p.getOpType().equals("Cast")
                    || p.getOpType().equals("Identity"))) {
                return v;
            }
            v = p.getInput(0);
        }
        return v;
    }

    private MlpBlock mlp(int layer, NodeProto attnAdd, String mid) {
        if (mid.isEmpty()) {
            throw new BadInputException("layer " + layer + ": the attention's residual sum is not exposed by "
                    + attnAdd.getOpType());
        }
        Set<String> afterAdd = flow.forwardValues(attnAdd.getOutputList().stream().filter(s -> !s.isEmpty()).toList());
        boolean seenAttnAdd = false;
        for (NodeProto n : g.nodes()) {
            if (n == attnAdd) {
                seenAttnAdd = true;
                continue;
            }
            boolean isAdd = n.getOpType().equals("Add") && n.getDomain().isEmpty();
            if (!seenAttnAdd || !(isAdd || SKIP_NORMS.contains(n.getOpType())) || n.getInputCount() < 2) {
                continue;
            }
            String a = n.getInput(0);
            String b = n.getInput(1);
            String other = a.equals(mid) ? b : b.equals(mid) ? a : null;
            if (other != null && afterAdd.contains(other) && !other.equals(mid)) {
                String sum = SKIP_NORMS.contains(n.getOpType())
                        ? (n.getOutputCount() > 3 ? n.getOutput(3) : "")
                        : n.getOutput(0);
                NodeProto norm = SKIP_NORMS.contains(attnAdd.getOpType()) ? attnAdd : firstConsumer(mid, n);
                return new MlpBlock(norm, n, sum);
            }
        }
        throw new BadInputException("layer " + layer + ": no residual add consumes the MLP output");
    }

    private NodeProto firstConsumer(String value, NodeProto except) {
        for (NodeProto c : g.consumers(value)) {
            if (c != except) {
                return c;
            }
        }
        return null;
    }

    /**
     * Floating-point runtime inputs are KV caches; each belongs to the first layer whose attention
     * reads it. An input that reaches that attention's queries enters the residual stream instead
     * (random's noise): it is no cache and belongs to no layer.
     */
    private Map<Integer, List<String>> assignKvInputs(List<AttentionCores.Core> cores, Map<NodeProto, Integer> coreIndex,
                                                      ModelInputs io) {
        Map<Integer, List<String>> result = new HashMap<>();
        for (ValueInfoProto in : g.runtimeInputs()) {
            if (io.isModelInput(in.getName()) || !isFloating(in)) {
                continue;
            }
            int first = Integer.MAX_VALUE;
            Set<String> reached = flow.forwardValues(List.of(in.getName()));
            for (String v : reached) {
                NodeProto p = g.producer(v);
                Integer idx = p == null ? null : coreIndex.get(p);
                if (idx != null) {
                    first = Math.min(first, idx);
                }
            }
            if (first == Integer.MAX_VALUE) {
                throw new BadInputException("input '" + in.getName() + "' looks like a KV cache but no attention reads it");
            }
            String query = queryInput(cores.get(first));
            if (query != null && reached.contains(query)) {
                continue;
            }
            result.computeIfAbsent(first, k -> new ArrayList<>()).add(in.getName());
        }
        return result;
    }

    /** The attention's query operand: input 0 of a fused op, the left side of an unfused Q.K MatMul. */
    private String queryInput(AttentionCores.Core core) {
        if (core.kind() != AttentionKind.UNFUSED) {
            return core.node().getInput(0);
        }
        NodeProto scores = scoresMatMul(core.node());
        return scores == null ? null : scores.getInput(0);
    }

    /**
     * A present output made by an attention op belongs to its layer. One computed by plain ops
     * (concat of past and new K/V) belongs to the highest layer whose past input it reads, or
     * without one, to the layer after the last attention it depends on. The past decides first
     * because freeze computes a layer's present from an earlier layer's stream.
     */
    private Map<Integer, List<String>> assignKvOutputs(int layers, Map<NodeProto, Integer> coreIndex, ModelInputs io,
                                                       Map<Integer, List<String>> kvInputs) {
        Map<String, Integer> pastLayer = new HashMap<>();
        kvInputs.forEach((layer, names) -> names.forEach(n -> pastLayer.put(n, layer)));
        Map<Integer, List<String>> result = new HashMap<>();
        for (ValueInfoProto out : g.outputs()) {
            String name = out.getName();
            if (name.equals(io.logits()) || declaredRankBelowFour(out) && !StaticCache.isCacheWrite(g, name)) {
                continue; // a cache is [B, H, P, D] or stacked [2, B, H, P, D]; [B, S, D] is an exposed hidden state
            }
            NodeProto direct = g.producer(name);
            Integer layer = direct == null ? null : coreIndex.get(direct);
            if (layer == null) {
                layer = flow.backwardValues(List.of(name)).stream().map(pastLayer::get)
                        .filter(java.util.Objects::nonNull).max(Integer::compare).orElse(null);
            }
            if (layer == null) {
                int last = -1;
                for (NodeProto n : flow.backwardNodes(List.of(name), Set.of())) {
                    Integer idx = coreIndex.get(n);
                    if (idx != null) {
                        last = Math.max(last, idx);
                    }
                }
                layer = last + 1;
            }
            if (layer >= layers) {
                throw new BadInputException("output '" + name + "' is neither the logits nor a layer's KV cache");
            }
            result.computeIfAbsent(layer, k -> new ArrayList<>()).add(name);
        }
        return result;
    }

    private static boolean declaredRankBelowFour(ValueInfoProto v) {
        return v.getType().getTensorType().hasShape() && v.getType().getTensorType().getShape().getDimCount() < 4;
    }

    private KvCache kvCache(List<String> in, List<String> out) {
        if (in.isEmpty() && out.isEmpty()) {
            return KvCache.none();
        }
        List<String> ordered = orderKeyFirst(in);
        List<String> orderedOut = orderKeyFirst(out);
        String sample = !ordered.isEmpty() ? ordered.get(0) : orderedOut.get(0);
        ValueInfoProto info = g.valueInfo(sample).orElse(null);
        List<TensorShapeProto.Dimension> dims = info == null ? List.of() : info.getType().getTensorType().getShape().getDimList();
        int count = Math.max(ordered.size(), orderedOut.size());
        boolean stacked = count == 1 && dims.size() == 5 && dims.get(0).hasDimValue() && dims.get(0).getDimValue() == 2;
        long perToken = 1;
        for (int d = 0; d < dims.size(); d++) {
            if (dims.get(d).hasDimValue()) {
                perToken *= dims.get(d).getDimValue();
            }
        }
        if (dims.isEmpty()) {
            perToken = 0;
        } else if (!stacked) {
            perToken *= count;
        }
        int elemType = info == null ? 0 : info.getType().getTensorType().getElemType();
        return new KvCache(ordered, orderedOut, stacked ? KvCache.Layout.STACKED : KvCache.Layout.SEPARATE,
                axes(dims, stacked), elemType, perToken);
    }

    /** Key before value: a name hint only, the pair is the pair either way. */
    private static List<String> orderKeyFirst(List<String> names) {
        List<String> copy = new ArrayList<>(names);
        copy.sort((a, b) -> Boolean.compare(a.toLowerCase().contains("value"), b.toLowerCase().contains("value")));
        return List.copyOf(copy);
    }

    private static List<String> axes(List<TensorShapeProto.Dimension> dims, boolean stacked) {
        List<String> names = new ArrayList<>(Collections.nCopies(dims.size(), "?"));
        int start = 0;
        if (stacked) {
            names.set(0, "kv");
            start = 1;
        }
        List<Integer> symbolic = new ArrayList<>();
        for (int d = start; d < dims.size(); d++) {
            if (!dims.get(d).hasDimValue()) {
                symbolic.add(d);
            }
        }
        if (symbolic.size() != 2) {
            return List.copyOf(names);
        }
        int batch = symbolic.get(0);
        int seq = symbolic.get(1);
        names.set(batch, "batch");
        names.set(seq, "seq");
        List<Integer> statics = new ArrayList<>();
        for (int d = start; d < dims.size(); d++) {
            if (d != batch && d != seq) {
                statics.add(d);
            }
        }
        if (statics.size() == 2) {
            names.set(statics.get(0), "heads");
            names.set(statics.get(1), "head_dim");
        }
        return List.copyOf(names);
    }

    private boolean isFloating(ValueInfoProto v) {
        int t = v.getType().getTensorType().getElemType();
        return t == TensorProto.DataType.FLOAT_VALUE || t == TensorProto.DataType.FLOAT16_VALUE
                || t == TensorProto.DataType.BFLOAT16_VALUE || t == TensorProto.DataType.DOUBLE_VALUE;
    }

    private DecoderLayout sizes(List<AttentionCores.Core> cores, List<LayerLayout> layers, ModelInputs io) {
        NodeProto first = cores.get(0).node();
        int numHeads = (int) Attributes.intOf(first, "num_heads", Attributes.intOf(first, "q_num_heads", 0));
        int kvHeads = (int) Attributes.intOf(first, "kv_num_heads", 0);
        int headDim = 0;
        KvCache kv = layers.get(0).kv();
        ValueInfoProto kvInfo = kv.inputs().isEmpty() ? null : g.valueInfo(kv.inputs().get(0)).orElse(null);
        if (kvInfo != null) {
            List<TensorShapeProto.Dimension> dims = kvInfo.getType().getTensorType().getShape().getDimList();
            int h = kv.axes().indexOf("heads");
            int d = kv.axes().indexOf("head_dim");
            if (h >= 0 && dims.get(h).hasDimValue()) {
                if (kvHeads == 0) {
                    kvHeads = (int) dims.get(h).getDimValue();
                }
            }
            if (d >= 0 && dims.get(d).hasDimValue()) {
                headDim = (int) dims.get(d).getDimValue();
            }
        }
        int hidden = io.hiddenSize();
        if (numHeads == 0 && headDim > 0 && hidden > 0) {
            numHeads = hidden / headDim;
        }
        if (headDim == 0 && numHeads > 0 && hidden > 0) {
            headDim = hidden / numHeads;
        }
        if (kvHeads == 0) {
            kvHeads = numHeads;
        }
        return new DecoderLayout(dialect(cores.get(0).kind()), hidden, numHeads, kvHeads, headDim, io.vocabSize(),
                io.inputIds(), io.attentionMask(), io.positionIds(), io.logits(), io.hasLmHead(), List.copyOf(layers),
                parameterCount());
    }

    private long parameterCount() {
        long params = 0;
        for (TensorProto t : g.initializers().values()) {
            params += Tensors.elementCount(t);
        }
        return params;
    }

    private String dialect(AttentionKind kind) {
        return switch (kind) {
            case MULTI_HEAD_ATTENTION -> "ort-genai-mha";
            case GROUP_QUERY_ATTENTION -> "ort-genai-gqa";
            case FUSED_ATTENTION -> "ort-fused-attention";
            case ONNX_ATTENTION -> "onnx-attention";
            case UNFUSED -> "attnskip".equals(g.header().getProducerName()) ? "attnskip" : "unfused";
        };
    }

}
