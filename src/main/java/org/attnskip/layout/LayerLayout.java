package org.attnskip.layout;

import ai.onnx.proto.OnnxMl.NodeProto;

import java.util.List;

/**
 * One decoder layer.
 *
 * @param residualIn the residual stream entering the layer (h_in)
 */
public record LayerLayout(int index, String residualIn, AttentionBlock attention, MlpBlock mlp, KvCacheIo kv) {

    /**
     * True when the attention op itself turns this layer's past K/V into its present K/V and can do
     * it in one buffer: GroupQueryAttention reads past key and value as inputs 3 and 4 and writes
     * present key and value as outputs 1 and 2. Bound to the same memory, a fixed-length buffer, it
     * writes only the new positions (ONNX Runtime's past_present_share_buffer). A static cache
     * ({@link StaticCache}) is kept across runs the same way: its TensorScatter writes into the bound buffer.
     */
    public boolean cacheUpdatedInPlace() {
        return cacheKind() == CacheKind.IN_PLACE || cacheKind() == CacheKind.STATIC;
    }

    /** How this layer's cache grows; a new cache dialect decides here (from the nodes discovery found). */
    public CacheKind cacheKind() {
        if (StaticCache.writes(this)) {
            return CacheKind.STATIC;
        }
        NodeProto core = attention.core();
        if (attention.kind() != AttentionKind.GROUP_QUERY_ATTENTION || kv.layout() != KvCacheIo.Layout.SEPARATE
                || core.getInputCount() <= GroupQueryAttentionSlots.PAST_VALUE || core.getOutputCount() < 3) {
            return CacheKind.CONCAT;
        }
        return kv.inputs().equals(List.of(core.getInput(GroupQueryAttentionSlots.PAST_KEY),
                core.getInput(GroupQueryAttentionSlots.PAST_VALUE)))
                && kv.outputs().equals(List.of(core.getOutput(1), core.getOutput(2))) ? CacheKind.IN_PLACE : CacheKind.CONCAT;
    }
}
