package org.attnskip.layout;

import ai.onnx.proto.OnnxMl.NodeProto;

/**
 * An attention op that a rewrite added beside a layer's own (such as the one-row attention of a
 * single-input freeze's first prompt): it writes no cache, so it is no layer's core. The rewrite
 * names it under {@link #NAME_PREFIX}; discovery skips it.
 */
public final class HelperAttention {
    public static final String NAME_PREFIX = "/attnskip/helper_attention";

    private HelperAttention() {
    }

    public static boolean is(NodeProto node) {
        return node.getName().startsWith(NAME_PREFIX);
    }
}
