package org.attnskip.layout;

import ai.onnx.proto.OnnxMl.NodeProto;

/**
 * com.microsoft::GroupQueryAttention's input slots, as ONNX Runtime's contrib-op spec numbers them:
 * query, key, value (0-2; key and value empty when the query is packed q|k|v), then these.
 */
public final class GroupQueryAttentionSlots {
    public static final int PAST_KEY = 3;
    public static final int PAST_VALUE = 4;
    public static final int SEQLENS_K = 5;
    public static final int TOTAL_SEQUENCE_LENGTH = 6;
    public static final int COS_CACHE = 7;
    public static final int SIN_CACHE = 8;

    private GroupQueryAttentionSlots() {
    }

    /** Whether {@code n} is the op (the contrib domain's, not a custom one of the same name). */
    public static boolean is(NodeProto n) {
        return n.getOpType().equals("GroupQueryAttention") && n.getDomain().equals("com.microsoft");
    }
}
