package org.attnskip.layout;

import ai.onnx.proto.OnnxMl.NodeProto;
import ai.onnx.proto.OnnxMl.TensorShapeProto;
import ai.onnx.proto.OnnxMl.ValueInfoProto;
import org.attnskip.onnx.Attributes;
import org.attnskip.onnx.BadInputException;
import org.attnskip.onnx.DataFlow;
import org.attnskip.onnx.Graph;

import java.util.ArrayList;
import java.util.List;

/**
 * Recognises a decoder-only LLM in an ONNX graph and describes it as a {@link DecoderLayout}.
 * This is the only place that knows how exporters spell a decoder. It matches by operators and
 * data flow; node and value names are used only as hints for the model's inputs.
 *
 * <p>The work is split by question: {@link AttentionCores} finds each layer's attention anchor,
 * {@link SubBlockFinder} walks from it to the layer's sub-blocks (with {@link ParentWalk}),
 * {@link KvAssignment} assigns the KV cache inputs and outputs, and {@link ResidualChain} checks
 * that the layers follow each other on one residual stream.
 */
public final class LayoutDiscovery {
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
            ModelInputs io = ModelInputs.find(g, flow, null);
            return new DecoderLayout("no-attention", io.hiddenSize(), 0, 0, 0, io.vocabSize(), io.inputIds(),
                    io.attentionMask(), io.positionIds(), io.logits(), io.hasLmHead(), List.of(), parameterCount(),
                    LogitsToKeepInput.find(g, flow, io));
        }
        if (cores.isEmpty()) {
            throw new BadInputException("not a decoder LLM: no attention found (looked for Attention, MultiHeadAttention,"
                    + " GroupQueryAttention and MatMul->Softmax->MatMul)");
        }
        ModelInputs io = ModelInputs.find(g, flow, cores.get(cores.size() - 1).branchOutput());
        ParentWalk parents = new ParentWalk(g);
        KvAssignment kv = new KvAssignment(g, flow, parents, cores, io);
        SubBlockFinder subBlocks = new SubBlockFinder(g, flow, parents);
        List<LayerLayout> layers = new ArrayList<>();
        for (int i = 0; i < cores.size(); i++) {
            layers.add(subBlocks.layer(i, cores.get(i), kv.inputs(i), kv.outputs(i), kv.cache(i)));
        }
        ResidualChain chain = new ResidualChain(g, flow);
        for (int i = 1; i < layers.size(); i++) {
            if (!chain.connects(layers.get(i - 1).mlp().residualSum(), layers.get(i).residualIn())) {
                throw new BadInputException("layer " + i + ": its residual input is not the residual output of layer "
                        + (i - 1) + " (not a sequential pre-norm decoder)");
            }
        }
        return sizes(cores, layers, io);
    }

    private DecoderLayout sizes(List<AttentionCores.Core> cores, List<LayerLayout> layers, ModelInputs io) {
        NodeProto first = cores.get(0).node();
        int numHeads = (int) Attributes.intOf(first, "num_heads", Attributes.intOf(first, "q_num_heads", 0));
        int kvHeads = (int) Attributes.intOf(first, "kv_num_heads", 0);
        int headDim = 0;
        KvCacheIo kv = layers.get(0).kv();
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
                parameterCount(), LogitsToKeepInput.find(g, flow, io));
    }

    private long parameterCount() {
        return ParameterCounts.total(g);
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
