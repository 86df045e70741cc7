package org.attnskip.layout;

import ai.onnx.proto.OnnxMl.NodeProto;
import ai.onnx.proto.OnnxMl.TensorProto;
import ai.onnx.proto.OnnxMl.TensorShapeProto;
import ai.onnx.proto.OnnxMl.ValueInfoProto;
import org.attnskip.onnx.BadInputException;
import org.attnskip.onnx.DataFlow;
import org.attnskip.onnx.Graph;

import java.util.List;
import java.util.Set;

/**
 * The model-level inputs (token ids, attention mask, position ids), the logits output and the
 * embedding and vocabulary sizes. Token ids are found by data flow (the integer input that indexes
 * the embedding table); the mask and position ids by their usual names, which every exporter we
 * know keeps.
 */
record ModelInputs(String inputIds, String attentionMask, String positionIds, String logits, boolean hasLmHead,
                   int vocabSize, int hiddenSize) {

    boolean isModelInput(String name) {
        return name.equals(inputIds) || name.equals(attentionMask) || name.equals(positionIds);
    }

    /**
     * @param lastAttention the last attention's output, or null without attention: an output computed
     *                      from it is the logits (or last hidden state); one that is not is a cache
     */
    static ModelInputs find(Graph g, DataFlow flow, String lastAttention) {
        String ids = null;
        String mask = null;
        String positions = null;
        TensorProto embedding = null;
        for (ValueInfoProto in : g.runtimeInputs()) {
            if (!isInteger(in)) {
                continue;
            }
            String lower = in.getName().toLowerCase();
            TensorProto table = embeddingIndexedBy(g, flow, in.getName());
            if (table != null && (embedding == null || widerOrLarger(table, embedding))) {
                if (ids != null && !ids.equals(in.getName()) && positions == null) {
                    positions = ids; // the smaller table was the position embedding
                }
                embedding = table;
                ids = in.getName();
            } else if (lower.contains("mask")) {
                mask = in.getName();
            } else if (lower.contains("position")) {
                positions = in.getName();
            }
        }
        if (ids == null) {
            throw new BadInputException("not a decoder LLM: no integer input indexes an embedding table (input_ids)");
        }
        String logits = null;
        for (ValueInfoProto out : g.outputs()) {
            String lower = out.getName().toLowerCase();
            if (lower.contains("logits") || lower.contains("last_state") || lower.contains("last_hidden_state")
                    || lower.contains("hidden_states")) {
                logits = out.getName();
                break;
            }
        }
        if (logits == null) {
            // Outputs come in any order (torch lists the stacked present_0 first): take the first one
            // computed from the last attention, which no KV cache is.
            Set<String> afterAttention = lastAttention == null ? Set.of() : flow.forwardValues(List.of(lastAttention));
            logits = g.outputs().stream().map(ValueInfoProto::getName).filter(afterAttention::contains).findFirst()
                    .orElse(g.outputs().get(0).getName());
        }
        int hidden = embedding.getDimsCount() == 2 ? (int) embedding.getDims(1) : 0;
        int vocab = (int) embedding.getDims(0);
        int outLast = lastStaticDim(g, logits);
        boolean lmHead = outLast > 0 ? outLast != hidden || outLast == vocab
                : writtenByProjection(g, logits);
        if (lmHead && outLast > 0) {
            vocab = outLast;
        }
        return new ModelInputs(ids, mask, positions, logits, lmHead, vocab, hidden);
    }

    /** Ops that only reshape or retype a tensor between the LM head and the output it writes. */
    private static final Set<String> PASS_THROUGH = Set.of("Reshape", "Cast", "Identity", "Squeeze", "Unsqueeze");

    /**
     * Without a declared width, the output is logits when a projection writes it (through reshapes
     * and casts at most); a hidden state comes from a norm or a residual add.
     */
    private static boolean writtenByProjection(Graph g, String output) {
        String v = output;
        for (int hops = 0; hops <= HopLimits.RESHAPES_BEFORE_PROJECTION; hops++) {
            NodeProto p = g.producer(v);
            if (p == null) {
                return false;
            }
            if (Projections.isProjection(g, p)) {
                return true;
            }
            if (!PASS_THROUGH.contains(p.getOpType())) {
                return false;
            }
            v = p.getInput(0);
        }
        return false;
    }

    /**
     * The token embedding is as wide as the hidden state; rotary tables gathered by position are
     * narrower (head_dim / 2), and learned position tables have fewer rows than the vocabulary.
     */
    private static boolean widerOrLarger(TensorProto a, TensorProto b) {
        return a.getDims(1) != b.getDims(1) ? a.getDims(1) > b.getDims(1) : a.getDims(0) > b.getDims(0);
    }

    private static boolean isInteger(ValueInfoProto v) {
        int t = v.getType().getTensorType().getElemType();
        return t == TensorProto.DataType.INT64_VALUE || t == TensorProto.DataType.INT32_VALUE;
    }

    /** The embedding table an integer input indexes, following casts, reshapes and slices. */
    private static TensorProto embeddingIndexedBy(Graph g, DataFlow flow, String input) {
        for (String v : flow.forwardValues(List.of(input))) {
            NodeProto p = g.producer(v);
            if (p == null) {
                continue;
            }
            if (p.getOpType().equals("Gather") && p.getInputCount() == 2 && g.isInitializer(p.getInput(0))
                    && isReachedOnlyThroughIndexOps(g, p.getInput(1), input)) {
                TensorProto t = g.initializer(p.getInput(0)).get();
                if (t.getDimsCount() == 2) {
                    return t;
                }
            }
            if (p.getOpType().equals("EmbedLayerNormalization")
                    && isReachedOnlyThroughIndexOps(g, p.getInput(0), input)) {
                return g.initializer(p.getInput(2)).orElse(null);
            }
        }
        return null;
    }

    /** True when value is the input itself, or the input passed through casts/reshapes/slices. */
    private static boolean isReachedOnlyThroughIndexOps(Graph g, String value, String input) {
        String v = value;
        for (int depth = 0; depth < HopLimits.INDEX_OPS; depth++) {
            if (v.equals(input)) {
                return true;
            }
            NodeProto p = g.producer(v);
            if (p == null || !List.of("Cast", "Reshape", "Slice", "Identity", "Squeeze", "Unsqueeze").contains(p.getOpType())) {
                return false;
            }
            v = p.getInput(0);
        }
        return false;
    }

    private static int lastStaticDim(Graph g, String name) {
        return g.valueInfo(name).map(v -> {
            List<TensorShapeProto.Dimension> dims = v.getType().getTensorType().getShape().getDimList();
            if (dims.isEmpty() || !dims.get(dims.size() - 1).hasDimValue()) {
                return 0;
            }
            return (int) dims.get(dims.size() - 1).getDimValue();
        }).orElse(0);
    }
}
