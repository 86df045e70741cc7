package org.attnskip.layout;

import ai.onnx.proto.OnnxMl.NodeProto;
import org.attnskip.onnx.Graph;

import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * Quantized activations as ONNX Runtime's static quantizer writes its QDQ format: a tensor x that
 * a quantized op reads goes x -> QuantizeLinear -> DequantizeLinear -> reader (int8 in the ONNX
 * domain, 16-bit in com.microsoft before opset 21), one pair shared by all readers. The pair
 * stands for x rounded to the quantization grid: the walks of discovery see through it, so that a
 * residual add reading DequantizeLinear(h) still adds to the stream h.
 */
final class QdqPairs {
    /** Pairs are not chained deeper than this (a Q -> DQ -> Q -> DQ a rewrite may leave). */
    private static final int MAX_CHAIN = 4;

    private QdqPairs() {
    }

    static boolean isQuantizeOrDequantize(NodeProto n) {
        return (n.getOpType().equals("QuantizeLinear") || n.getOpType().equals("DequantizeLinear"))
                && (n.getDomain().isEmpty() || n.getDomain().equals("ai.onnx") || n.getDomain().equals("com.microsoft"));
    }

    private static boolean is(NodeProto n, String op) {
        return n != null && n.getOpType().equals(op) && isQuantizeOrDequantize(n);
    }

    /** x for DequantizeLinear(QuantizeLinear(x)), through chained pairs; {@code v} itself otherwise. */
    static String source(Graph g, String v) {
        for (int i = 0; i < MAX_CHAIN; i++) {
            NodeProto dq = g.producer(v);
            if (!is(dq, "DequantizeLinear")) {
                return v;
            }
            NodeProto q = g.producer(dq.getInput(0));
            if (!is(q, "QuantizeLinear")) {
                return v;
            }
            v = q.getInput(0);
        }
        return v;
    }

    /** {@code v} and the outputs of the pairs that quantize it: the values its readers may read instead. */
    static Set<String> aliases(Graph g, String v) {
        Set<String> out = new LinkedHashSet<>(List.of(v));
        List<String> frontier = List.of(v);
        for (int i = 0; i < MAX_CHAIN && !frontier.isEmpty(); i++) {
            List<String> next = new ArrayList<>();
            for (String x : frontier) {
                for (NodeProto q : g.consumers(x)) {
                    if (!is(q, "QuantizeLinear") || !q.getInput(0).equals(x)) {
                        continue;
                    }
                    for (NodeProto dq : g.consumers(q.getOutput(0))) {
                        if (is(dq, "DequantizeLinear") && dq.getInput(0).equals(q.getOutput(0)) && out.add(dq.getOutput(0))) {
                            next.add(dq.getOutput(0));
                        }
                    }
                }
            }
            frontier = next;
        }
        return out;
    }

    /** The nodes that read {@code v} directly or through its pairs, the pairs' own nodes left out. */
    static List<NodeProto> readers(Graph g, String v) {
        List<NodeProto> out = new ArrayList<>();
        for (String alias : aliases(g, v)) {
            for (NodeProto n : g.consumers(alias)) {
                if (!is(n, "QuantizeLinear")) {
                    out.add(n);
                }
            }
        }
        return out;
    }
}
