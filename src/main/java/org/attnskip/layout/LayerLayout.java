package org.attnskip.layout;

import ai.onnx.proto.OnnxMl.NodeProto;

import java.util.List;

/**
 * One decoder layer.
 *
 * @param residualIn the residual stream entering the layer (h_in)
 */
public record LayerLayout(int index, String residualIn, AttentionBlock attention, MlpBlock mlp, KvCache kv) {

    /**
     * True when the attention op itself turns this layer's past K/V into its present K/V and can do
     * it in one buffer: GroupQueryAttention reads past key and value as inputs 3 and 4 and writes
     * present key and value as outputs 1 and 2. Bound to the same memory, a fixed-length buffer, it
     * writes only the new positions (ONNX Runtime's past_present_share_buffer). A static cache
     * ({@link StaticCache}) is updated in place the same way.
     */
    public boolean cacheUpdatedInPlace() {
        if (StaticCache.writes(this)) {
            return true; // TensorScatter into a fixed buffer: in place once its output is bound to its input
        }
        NodeProto core = attention.core();
        if (attention.kind() != AttentionKind.GROUP_QUERY_ATTENTION || kv.layout() != KvCache.Layout.SEPARATE
                || core.getInputCount() < 5 || core.getOutputCount() < 3) {
            return false;
        }
        return kv.inputs().equals(List.of(core.getInput(3), core.getInput(4)))
                && kv.outputs().equals(List.of(core.getOutput(1), core.getOutput(2)));
    }
}
