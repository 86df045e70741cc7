package org.attnskip.layout;

import ai.onnx.proto.OnnxMl.NodeProto;
import ai.onnx.proto.OnnxMl.TensorProto;
import org.attnskip.onnx.Attributes;
import org.attnskip.onnx.Graph;
import org.attnskip.onnx.Tensors;

import java.util.HashMap;
import java.util.Map;

/**
 * A model's parameters as its author counts them: the elements of each weight matrix, however it
 * is stored. A {@code com.microsoft::MatMulNBits} weight is packed int4/int8 codes in bytes plus
 * per-block scales and zero points; it counts K x N parameters (its logical matrix) and its
 * quantization tensors none, so an int4 or int8 export counts what the fp32 export does. Every
 * other initializer counts its elements.
 */
public final class ParameterCounts {
    private static final int NBITS_WEIGHT = 1;
    /** MatMulNBits' scales, zero_points and g_idx: how the codes decode, no parameters of their own. */
    private static final int[] NBITS_QUANTIZATION = {2, 3, 4};

    private ParameterCounts() {
    }

    /** Each initializer's logical parameter count. */
    public static Map<String, Long> of(Graph g) {
        Map<String, Long> counts = new HashMap<>();
        for (TensorProto t : g.initializers().values()) {
            counts.put(t.getName(), Tensors.elementCount(t));
        }
        for (NodeProto n : g.nodes()) {
            if (!n.getOpType().equals("MatMulNBits") || !n.getDomain().equals("com.microsoft")) {
                continue;
            }
            long k = Attributes.intOf(n, "K", 0);
            long nOut = Attributes.intOf(n, "N", 0);
            if (n.getInputCount() > NBITS_WEIGHT && counts.containsKey(n.getInput(NBITS_WEIGHT)) && k > 0 && nOut > 0) {
                counts.put(n.getInput(NBITS_WEIGHT), k * nOut);
            }
            for (int slot : NBITS_QUANTIZATION) {
                if (slot < n.getInputCount() && counts.containsKey(n.getInput(slot))) {
                    counts.put(n.getInput(slot), 0L);
                }
            }
        }
        return counts;
    }

    public static long total(Graph g) {
        return of(g).values().stream().mapToLong(Long::longValue).sum();
    }
}
