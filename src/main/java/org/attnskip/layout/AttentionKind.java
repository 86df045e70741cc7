package org.attnskip.layout;

/** How a layer's attention is spelled in the graph. */
public enum AttentionKind {
    /** com.microsoft::MultiHeadAttention (ORT GenAI's model builder). */
    MULTI_HEAD_ATTENTION("com.microsoft::MultiHeadAttention"),
    /** com.microsoft::GroupQueryAttention, packed or separate Q/K/V. */
    GROUP_QUERY_ATTENTION("com.microsoft::GroupQueryAttention"),
    /** com.microsoft::Attention: QKV projection inside the op, stacked past. */
    FUSED_ATTENTION("com.microsoft::Attention"),
    /** The standard ONNX Attention operator (opset 23+). */
    ONNX_ATTENTION("ai.onnx::Attention"),
    /** MatMul -> Softmax -> MatMul spelled out (torch.onnx, optimum, attnskip's own exporter). */
    UNFUSED("MatMul/Softmax");

    public final String label;

    AttentionKind(String label) {
        this.label = label;
    }
}
