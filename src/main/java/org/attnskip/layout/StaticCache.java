package org.attnskip.layout;

import ai.onnx.proto.OnnxMl.NodeProto;
import org.attnskip.onnx.Attributes;
import org.attnskip.onnx.Graph;

import java.util.List;
import java.util.Optional;

/**
 * The static KV cache of the ONNX opset-24 LLM spelling: each cache is a fixed-size buffer
 * [batch, max_len, kv_hidden] that {@code TensorScatter} writes the run's new K or V into at
 * {@code write_indices}, and that the {@code Attention} op reads whole, its first
 * {@code nonpad_kv_seqlen} positions being real. The buffer never grows, so a runtime keeps it
 * across runs (bound as input and output) and tells the graph where to write and how much to read.
 *
 * @param writeIndices   the graph input TensorScatter writes at, per row (absent: position 0)
 * @param nonpadKvSeqlen the graph input that tells Attention how many positions are real
 * @param sequenceAxis   the buffer's sequence axis (TensorScatter's axis)
 */
public record StaticCache(String writeIndices, String nonpadKvSeqlen, int sequenceAxis) {
    /** TensorScatter's default axis is -2: the sequence axis of [batch, max_len, kv_hidden]. */
    private static final long DEFAULT_AXIS = -2;

    /** True when every cache output of the layer is a TensorScatter of one of its cache inputs. */
    public static boolean writes(LayerLayout layer) {
        KvCacheIo kv = layer.kv();
        if (kv.isEmpty() || kv.outputs().size() != kv.inputs().size()) {
            return false;
        }
        for (String out : kv.outputs()) {
            NodeProto w = writer(layer, out);
            if (w == null || !kv.inputs().contains(w.getInput(0))) {
                return false;
            }
        }
        return true;
    }

    /** The static cache of a graph whose every cached layer has one; empty otherwise. */
    public static Optional<StaticCache> of(DecoderLayout layout) {
        StaticCache found = null;
        for (LayerLayout layer : layout.layers()) {
            if (layer.kv().isEmpty()) {
                continue;
            }
            if (!writes(layer)) {
                return Optional.empty();
            }
            NodeProto w = writer(layer, layer.kv().outputs().get(0));
            NodeProto core = layer.attention().core();
            String write = w.getInputCount() > 2 && !w.getInput(2).isEmpty() ? w.getInput(2) : null;
            String nonpad = layer.attention().kind() == AttentionKind.ONNX_ATTENTION && core.getInputCount() > 6
                    && !core.getInput(6).isEmpty() ? core.getInput(6) : null;
            int rank = layer.kv().axes().size();
            long axis = Attributes.intOf(w, "axis", DEFAULT_AXIS);
            StaticCache here = new StaticCache(write, nonpad, (int) (axis < 0 ? axis + rank : axis));
            if (found != null && !found.equals(here)) {
                return Optional.empty(); // layers disagree on their control inputs: not one cache to feed
            }
            found = here;
        }
        return Optional.ofNullable(found);
    }

    /** True when the value is written by a TensorScatter whose buffer is a graph input: a static cache's next state. */
    static boolean isCacheWrite(Graph g, String value) {
        NodeProto p = g.producer(value);
        return p != null && isTensorScatter(p) && g.isGraphInput(p.getInput(0));
    }

    private static NodeProto writer(LayerLayout layer, String output) {
        List<NodeProto> nodes = layer.attention().nodes();
        for (NodeProto n : nodes) {
            if (isTensorScatter(n) && n.getOutput(0).equals(output)) {
                return n;
            }
        }
        return null;
    }

    private static boolean isTensorScatter(NodeProto n) {
        return n.getOpType().equals("TensorScatter") && (n.getDomain().isEmpty() || n.getDomain().equals("ai.onnx"));
    }
}
