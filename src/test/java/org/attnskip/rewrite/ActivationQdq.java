package org.attnskip.rewrite;

import ai.onnx.proto.OnnxMl.ModelProto;
import ai.onnx.proto.OnnxMl.NodeProto;
import ai.onnx.proto.OnnxMl.OperatorSetIdProto;
import ai.onnx.proto.OnnxMl.TensorProto;
import ai.onnx.proto.OnnxMl.TensorProto.DataType;
import com.google.protobuf.ByteString;
import org.attnskip.onnx.Graph;
import org.attnskip.onnx.Tensors;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Quantizes a graph's activations the way ONNX Runtime's static quantizer writes its QDQ format:
 * every activation that a MatMul or an Add reads (projection inputs, Q and K, the probabilities and
 * V, the residual stream, the rotary products) goes through one QuantizeLinear -> DequantizeLinear
 * pair, shared by all its readers. Symmetric, per tensor, one fixed scale. Weights stay float.
 * Two spellings: int8 in the ONNX domain, and int16 in {@code com.microsoft}, which is what the
 * quantizer writes for 16-bit activations before opset 21. Test-only.
 */
final class ActivationQdq {
    enum Spelling {
        /** int8 codes, scale 1/16: the stream saturates beyond +-8. */
        INT8("", DataType.INT8, 1f / 16, Float.NaN),
        /** int16 codes (com.microsoft), scale 2^-11: +-16 in steps of 4.9e-4. */
        INT16_MICROSOFT("com.microsoft", DataType.INT16, 1f / 2048, 5e-3f);

        final String domain;
        final DataType type;
        final float scale;
        /**
         * The largest logit error against the float reference this quantization is held to; NaN for
         * int8 at one fixed scale, whose rounding (0.29 on the unmodified test graph) is of the order
         * of what drop itself changes (0.68), so no bound would tell a wrong rewrite from rounding.
         */
        final float logitBound;

        Spelling(String domain, DataType type, float scale, float logitBound) {
            this.domain = domain;
            this.type = type;
            this.scale = scale;
            this.logitBound = logitBound;
        }
    }

    private static final Set<String> QUANTIZED_READERS = Set.of("MatMul", "Add");

    private ActivationQdq() {
    }

    static ModelProto insert(ModelProto model, Spelling s) {
        Graph g = new Graph(model);
        String scale = "qdq.scale";
        String zero = "qdq.zero_point";
        g.addInitializer(Tensors.floatTensor(scale, new long[0], new float[] {s.scale}));
        g.addInitializer(TensorProto.newBuilder().setName(zero).setDataType(s.type.getNumber())
                .setRawData(ByteString.copyFrom(new byte[s.type == DataType.INT8 ? 1 : 2])).build());
        Map<String, String> dequantized = new HashMap<>();
        for (NodeProto n : List.copyOf(g.nodes())) {
            if (!QUANTIZED_READERS.contains(n.getOpType()) || !n.getDomain().isEmpty()) {
                continue;
            }
            for (String in : List.copyOf(n.getInputList())) {
                if (in.isEmpty() || g.isInitializer(in) || isConstant(g, in) || dequantized.containsValue(in)) {
                    continue;
                }
                String dq = dequantized.computeIfAbsent(in, v -> {
                    String q = v + "_QuantizeLinear_Output";
                    String out = v + "_DequantizeLinear_Output";
                    g.add(NodeProto.newBuilder().setOpType("QuantizeLinear").setDomain(s.domain).setName(v + "_QuantizeLinear")
                            .addInput(v).addInput(scale).addInput(zero).addOutput(q).build());
                    g.add(NodeProto.newBuilder().setOpType("DequantizeLinear").setDomain(s.domain)
                            .setName(v + "_DequantizeLinear").addInput(q).addInput(scale).addInput(zero).addOutput(out).build());
                    return out;
                });
                g.renameInput(n, in, dq);
            }
        }
        g.toposort();
        ModelProto out = g.toModel();
        if (!s.domain.isEmpty() && out.getOpsetImportList().stream().noneMatch(o -> o.getDomain().equals(s.domain))) {
            out = out.toBuilder().addOpsetImport(OperatorSetIdProto.newBuilder().setDomain(s.domain).setVersion(1)).build();
        }
        return out;
    }

    private static boolean isConstant(Graph g, String value) {
        NodeProto p = g.producer(value);
        return p != null && p.getOpType().equals("Constant");
    }
}
