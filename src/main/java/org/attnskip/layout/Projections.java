package org.attnskip.layout;

import ai.onnx.proto.OnnxMl.NodeProto;
import org.attnskip.onnx.Attributes;
import org.attnskip.onnx.Graph;

import java.util.Set;

/**
 * How exporters spell a projection y = x W. The weight is stored, or computed from stored tensors
 * only: transposed (torch.onnx at opset 23+ stores [out, in] and transposes), reshaped, cast, or
 * dequantised (QDQ). Or the projection is ONNX Runtime's MatMulNBits, whose weight is packed
 * int4/int8 blocks with scales.
 */
final class Projections {
    /**
     * Ops a stored weight may pass through on its way to a MatMul; none of them mixes in the data.
     * Slice is how freeze splits a packed q|k|v weight into column slices.
     */
    private static final Set<String> WEIGHT_PATH = Set.of("Transpose", "Reshape", "Cast", "Identity",
            "DequantizeLinear", "Squeeze", "Unsqueeze", "Slice");

    private Projections() {
    }

    /** A value computed from stored tensors only, through a few layout and dequantisation ops. */
    static boolean isWeight(Graph g, String value) {
        return weightPathHas(g, value, null, HopLimits.WEIGHT_PATH);
    }

    /** A MatMul or Gemm against a weight, or a MatMulNBits. */
    static boolean isProjection(Graph g, NodeProto n) {
        return switch (n.getOpType()) {
            case "MatMul", "Gemm" -> n.getDomain().isEmpty() && isWeight(g, n.getInput(1));
            case "MatMulNBits" -> n.getDomain().equals("com.microsoft");
            default -> false;
        };
    }

    static ProjectionKind kindOf(Graph g, NodeProto projection) {
        if (projection.getOpType().equals("MatMulNBits")) {
            return switch ((int) Attributes.intOf(projection, "bits", 4)) {
                case 4 -> ProjectionKind.INT4;
                case 8 -> ProjectionKind.INT8;
                default -> ProjectionKind.NBITS;
            };
        }
        return weightPathHas(g, projection.getInput(1), "DequantizeLinear", HopLimits.WEIGHT_PATH)
                ? ProjectionKind.QDQ : ProjectionKind.FLOAT;
    }

    /**
     * True when {@code value} is a weight and, if {@code op} is not null, an {@code op} node is on
     * its path from the stored tensors.
     */
    private static boolean weightPathHas(Graph g, String value, String op, int hopsLeft) {
        if (g.isInitializer(value) || ParentWalk.isConstant(g, value)) {
            return op == null;
        }
        NodeProto p = g.producer(value);
        if (p == null || hopsLeft == 0 || !WEIGHT_PATH.contains(p.getOpType())
                || !Set.of("", "ai.onnx", "com.microsoft").contains(p.getDomain())) {
            return false;
        }
        boolean found = op != null && p.getOpType().equals(op);
        for (String in : p.getInputList()) {
            if (!in.isEmpty() && !weightPathHas(g, in, null, hopsLeft - 1)) {
                return false;
            }
        }
        return op == null || found || weightPathHas(g, p.getInput(0), op, hopsLeft - 1);
    }
}
