package org.attnskip.layout;

import ai.onnx.proto.OnnxMl.NodeProto;

/**
 * Operator inputs that a step reads only at the rows its indices or positions select (a gathered
 * embedding, rotary cos/sin caches): a table, not weights streamed whole. Kept here because it
 * names exporter dialects' operators.
 */
public final class IndexedReads {
    private IndexedReads() {
    }

    public static boolean readsSelectedRowsOnly(NodeProto n, int input) {
        boolean contrib = n.getDomain().equals("com.microsoft");
        return switch (n.getOpType()) {
            case "Gather" -> input == 0;
            case "RotaryEmbedding" -> contrib && (input == 2 || input == 3);
            case "GroupQueryAttention" -> contrib
                    && (input == GroupQueryAttentionSlots.COS_CACHE || input == GroupQueryAttentionSlots.SIN_CACHE);
            default -> false;
        };
    }
}
