package org.attnskip.layout;

import java.util.List;

/**
 * One layer's KV-cache inputs and outputs as the graph names them (the tensors fed at run time
 * are runtime.KvCache). With a SEPARATE layout, inputs are [key, value]; with STACKED, one tensor
 * holds both along a leading axis of size 2.
 *
 * @param axes the meaning of each axis, e.g. [batch, kv_heads, past_seq, head_dim]
 */
public record KvCacheIo(List<String> inputs, List<String> outputs, Layout layout, List<String> axes,
                      int elementType, long elementsPerToken) {
    public enum Layout { SEPARATE, STACKED }

    public static KvCacheIo none() {
        return new KvCacheIo(List.of(), List.of(), Layout.SEPARATE, List.of(), 0, 0);
    }

    public boolean isEmpty() {
        return inputs.isEmpty() && outputs.isEmpty();
    }
}
