package org.attnskip.layout;

import ai.onnx.proto.OnnxMl.NodeProto;
import ai.onnx.proto.OnnxMl.TensorProto;
import ai.onnx.proto.OnnxMl.ValueInfoProto;
import org.attnskip.onnx.DataFlow;
import org.attnskip.onnx.Graph;
import org.attnskip.onnx.Tensors;

import java.util.Arrays;
import java.util.List;

/**
 * The input that says how many last positions get logits ({@code logits_to_keep}, Hugging Face's
 * convention, as attnskip's exports take it): an int64 input n whose negation starts a Slice of the
 * sequence axis (axis 1) on the way to the logits, so 0 keeps every position and n > 0 the last n.
 * Recognised by that data flow, not by its name. Graphs without one (third-party exports) have none.
 */
final class LogitsToKeepInput {
    private LogitsToKeepInput() {
    }

    /** The input's name, or null when the graph has no such input. */
    static String find(Graph g, DataFlow flow, ModelInputs io) {
        for (ValueInfoProto in : g.runtimeInputs()) {
            String name = in.getName();
            if (io.isModelInput(name) || in.getType().getTensorType().getElemType() != TensorProto.DataType.INT64_VALUE) {
                continue;
            }
            for (NodeProto neg : g.consumers(name)) {
                if (!neg.getOpType().equals("Neg")) {
                    continue;
                }
                for (NodeProto slice : g.consumers(neg.getOutput(0))) {
                    if (slicesSequenceFrom(g, slice, neg.getOutput(0))
                            && flow.forwardValues(List.of(slice.getOutput(0))).contains(io.logits())) {
                        return name;
                    }
                }
            }
        }
        return null;
    }

    /** Slice(x, starts, ends, axes = [1]) with {@code starts} as its starts. */
    private static boolean slicesSequenceFrom(Graph g, NodeProto slice, String starts) {
        if (!slice.getOpType().equals("Slice") || slice.getInputCount() < 4 || !slice.getInput(1).equals(starts)) {
            return false;
        }
        long[] axes = g.initializer(slice.getInput(3)).map(t -> Tensors.longs(t, null)).orElse(null);
        return axes != null && Arrays.equals(axes, new long[] {1});
    }
}
