package org.attnskip.layout;

import ai.onnx.proto.OnnxMl.NodeProto;
import ai.onnx.proto.OnnxMl.TensorProto;
import org.attnskip.onnx.Attributes;
import org.attnskip.onnx.Graph;

/**
 * How wide a decode step's attention mask may be in a graph whose attention reads the mask only as
 * lengths (GroupQueryAttention: seqlens_k from its sum, total_sequence_length from its width). The op
 * refuses a total_sequence_length beyond the positions of the rotary tables it applies itself
 * (cos_cache, input 7, when do_rotary is 1); nothing else bounds it but the cache's capacity.
 */
public final class StepMaskWidth {
    /** No bound from the graph: the cache's capacity decides. */
    public static final long UNBOUNDED = Long.MAX_VALUE;

    private static final int COS_CACHE = 7;

    private StepMaskWidth() {
    }

    /**
     * The positions of the smallest rotary table a GroupQueryAttention applies itself, {@link #UNBOUNDED}
     * when none does, or 0 when a table is computed in the graph (its length is not known before a run).
     */
    public static long limit(Graph graph) {
        long limit = UNBOUNDED;
        for (NodeProto n : graph.nodes()) {
            if (!n.getOpType().equals("GroupQueryAttention") || !n.getDomain().equals("com.microsoft")
                    || Attributes.intOf(n, "do_rotary", 0) == 0 || n.getInputCount() <= COS_CACHE
                    || n.getInput(COS_CACHE).isEmpty()) {
                continue;
            }
            TensorProto cos = graph.initializer(n.getInput(COS_CACHE)).orElse(null);
            if (cos == null || cos.getDimsCount() != 2) {
                return 0;
            }
            limit = Math.min(limit, cos.getDims(0));
        }
        return limit;
    }
}
