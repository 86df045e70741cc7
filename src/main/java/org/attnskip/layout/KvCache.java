package org.attnskip.layout;

import java.util.List;

/**
 * One layer's KV-cache inputs and outputs. With a SEPARATE layout, inputs are [key, value]; with
 * STACKED, one tensor holds both along a leading axis of size 2.
 *
 * @param axes the meaning of each axis, e.g. [batch, kv_heads, past_seq, head_dim]
 */
public record KvCache(List<String> inputs, List<String> outputs, Layout layout, List<String> axes,
                      int elementType, long elementsPerToken) {
    public enum Layout { SEPARATE, STACKED }

    public static KvCache none() {
        return new KvCache(List.of(), List.of(), Layout.SEPARATE, List.of(), 0, 0);
    }

    public boolean isEmpty() {
        return inputs.isEmpty() && outputs.isEmpty();
    }
}
