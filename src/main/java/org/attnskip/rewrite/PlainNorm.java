package org.attnskip.rewrite;

import ai.onnx.proto.OnnxMl.AttributeProto;
import org.attnskip.onnx.Attributes;
import ai.onnx.proto.OnnxMl.NodeProto;
import org.attnskip.onnx.BadInputException;
import org.attnskip.onnx.Graph;

/**
 * The plain norm hidden in a fused one. SkipLayerNormalization, SkipSimplifiedLayerNormalization
 * and EmbedLayerNormalization each add something and then normalise; when a pass changes what is
 * added, the normalisation alone is rebuilt as LayerNormalization or SimplifiedLayerNormalization,
 * which ONNX Runtime registers in the default domain at every opset.
 */
final class PlainNorm {
    private PlainNorm() {
    }

    static NodeProto of(Graph g, NodeProto fused, String input, String output) {
        String type = fused.getOpType();
        String gamma;
        String beta = null;
        boolean simplified;
        switch (type) {
            case "SkipLayerNormalization" -> {
                gamma = fused.getInput(2);
                beta = fused.getInputCount() > 3 && !fused.getInput(3).isEmpty() ? fused.getInput(3) : null;
                simplified = false;
            }
            case "SkipSimplifiedLayerNormalization" -> {
                gamma = fused.getInput(2);
                simplified = true;
            }
            case "EmbedLayerNormalization" -> {
                gamma = fused.getInput(5);
                beta = fused.getInput(6);
                simplified = false;
            }
            default -> throw new BadInputException("cannot separate the norm from " + type);
        }
        NodeProto.Builder norm = NodeProto.newBuilder()
                .setName(g.freshName((fused.getName().isEmpty() ? "/attnskip/norm" : fused.getName()) + "/attnskip_plain"))
                .setOpType(simplified ? "SimplifiedLayerNormalization" : "LayerNormalization")
                .addInput(input).addInput(gamma);
        if (beta != null) {
            norm.addInput(beta);
        }
        norm.addOutput(output);
        norm.addAttribute(Attributes.intAttr("axis", -1));
        for (AttributeProto a : fused.getAttributeList()) {
            if (a.getName().equals("epsilon")) {
                norm.addAttribute(a);
            }
        }
        if (simplified) {
            norm.addAttribute(Attributes.intAttr("stash_type", 1));
        }
        return norm.build();
    }
}
