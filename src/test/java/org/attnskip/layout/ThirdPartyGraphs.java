package org.attnskip.layout;

import ai.onnx.proto.OnnxMl.ModelProto;
import org.attnskip.onnx.Attributes;
import ai.onnx.proto.OnnxMl.TensorProto.DataType;
import org.attnskip.onnx.OnnxModelIO;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.attnskip.layout.ProtoGraphBuilder.MICROSOFT;
import static org.attnskip.onnx.Attributes.floatAttr;
import static org.attnskip.onnx.Attributes.intAttr;
import static org.attnskip.onnx.Attributes.intsAttr;

/**
 * Small Llama-style decoders (fp32, random seeded weights) spelled the way two exporter families
 * spell them, for the dialects we have no real file of. Every graph loads and runs on ONNX
 * Runtime's CPU provider with a KV cache, so rewrite tests can run them before and after.
 *
 * <ul>
 *   <li>{@link Dialect#GQA_PACKED} and {@link Dialect#GQA_SEPARATE}: ORT GenAI's model builder.
 *       com.microsoft::GroupQueryAttention with seqlens_k and total_sequence_length computed from
 *       attention_mask, RMSNorm as SimplifiedLayerNormalization and the residual adds fused into
 *       SkipSimplifiedLayerNormalization. Packed: one q|k|v MatMul, rotary inside the op (do_rotary=1,
 *       cos/sin caches), no position_ids input. Separate: q, k, v MatMuls, rotary as com.microsoft::RotaryEmbedding
 *       nodes on q and k reading position_ids (GenAI's spelling when rotary is not fused into attention).</li>
 *   <li>{@link Dialect#ONNX_ATTENTION}: what torch.onnx / optimum give at opset 23. The standard
 *       Attention op on 4-D (BNSH) Q/K/V with past_key/past_value inputs, rotary spelled out from
 *       position_ids, a boolean causal-and-padding mask built in the graph, RMSNormalization and plain
 *       Add residuals.</li>
 * </ul>
 * I/O names: input_ids, attention_mask, [position_ids], past_key_values.%d.key/.value (float,
 * [batch, 2, past, head_dim]) to logits and present.%d.key/.value. 4 query heads, 2 KV heads, vocab 64.
 */
public final class ThirdPartyGraphs {
    public static final int HEADS = 4;
    public static final int KV_HEADS = 2;
    public static final int VOCAB = 64;
    /** Rows of the rotary caches: the longest past + sequence a graph can take. */
    public static final int MAX_POSITIONS = 128;
    private static final double ROPE_THETA = 10000.0;
    private static final float EPSILON = 1e-6f;

    public enum Dialect {
        /** One MatMul makes q|k|v; GroupQueryAttention gets it as input 0 with inputs 1 and 2 empty. */
        GQA_PACKED,
        /** Separate Q, K and V MatMuls into GroupQueryAttention inputs 0, 1 and 2. */
        GQA_SEPARATE,
        /** The standard ONNX Attention operator (opset 23). */
        ONNX_ATTENTION
    }

    private ThirdPartyGraphs() {
    }

    /**
     * 64 for the GroupQueryAttention graphs, whose CPU kernel with rotary wants head_size % 16 == 0
     * (so head_dim 16), and 32 for the ONNX Attention graph (head_dim 8).
     */
    public static int hiddenSize(Dialect dialect) {
        return dialect == Dialect.ONNX_ATTENTION ? 32 : 64;
    }

    public static int headDim(Dialect dialect) {
        return hiddenSize(dialect) / HEADS;
    }

    public static ModelProto build(Dialect dialect, int layers, long seed) {
        return switch (dialect) {
            case GQA_PACKED, GQA_SEPARATE -> new OrtGenAi(dialect, seed).build(layers);
            case ONNX_ATTENTION -> new OnnxAttention(seed).build(layers);
        };
    }

    /** Builds the graph and saves it (weights inline) to {@code target}; returns {@code target}. */
    public static Path write(Dialect dialect, int layers, long seed, Path target) {
        OnnxModelIO.save(build(dialect, layers, seed), null, target, false);
        return target;
    }

    static String pastKey(int layer) {
        return "past_key_values." + layer + ".key";
    }

    static String pastValue(int layer) {
        return "past_key_values." + layer + ".value";
    }

    static String presentKey(int layer) {
        return "present." + layer + ".key";
    }

    static String presentValue(int layer) {
        return "present." + layer + ".value";
    }

    /** What both exporter families share: sizes, weights, KV I/O, the SwiGLU MLP and rotary tables. */
    private abstract static class Decoder {
        final ProtoGraphBuilder b;
        final int hidden;
        final int headDim;
        final int intermediate;

        Decoder(Dialect dialect, long seed) {
            this.b = new ProtoGraphBuilder("main_graph", seed);
            this.hidden = hiddenSize(dialect);
            this.headDim = headDim(dialect);
            this.intermediate = 2 * hidden;
        }

        /** cos (or sin) of position * theta^(-2j/head_dim), one row per position, head_dim/2 columns. */
        float[] rotaryTable(boolean sin) {
            int half = headDim / 2;
            float[] t = new float[MAX_POSITIONS * half];
            for (int p = 0; p < MAX_POSITIONS; p++) {
                for (int j = 0; j < half; j++) {
                    double angle = p * Math.pow(ROPE_THETA, -2.0 * j / headDim);
                    t[p * half + j] = (float) (sin ? Math.sin(angle) : Math.cos(angle));
                }
            }
            return t;
        }

        /** Inputs and outputs shared by both families. */
        void kvIo(int layers) {
            for (int i = 0; i < layers; i++) {
                b.input(pastKey(i), DataType.FLOAT, "batch_size", KV_HEADS, "past_sequence_length", headDim);
                b.input(pastValue(i), DataType.FLOAT, "batch_size", KV_HEADS, "past_sequence_length", headDim);
            }
            b.output("logits", DataType.FLOAT, "batch_size", "sequence_length", VOCAB);
            for (int i = 0; i < layers; i++) {
                b.output(presentKey(i), DataType.FLOAT, "batch_size", KV_HEADS, "total_sequence_length", headDim);
                b.output(presentValue(i), DataType.FLOAT, "batch_size", KV_HEADS, "total_sequence_length", headDim);
            }
        }

        /** gate/up projections, SiLU as x * Sigmoid(x), down projection; returns the MLP output. */
        String swiGlu(String prefix, String weightPrefix, String x) {
            String gate = b.node("MatMul", prefix + "/gate_proj/MatMul",
                    List.of(x, b.weight(weightPrefix + ".gate_proj.MatMul.weight", hidden, intermediate)));
            String up = b.node("MatMul", prefix + "/up_proj/MatMul",
                    List.of(x, b.weight(weightPrefix + ".up_proj.MatMul.weight", hidden, intermediate)));
            String sig = b.node("Sigmoid", prefix + "/act_fn/Sigmoid", List.of(gate));
            String silu = b.node("Mul", prefix + "/act_fn/Mul", List.of(gate, sig));
            String prod = b.node("Mul", prefix + "/Mul", List.of(silu, up));
            return b.node("MatMul", prefix + "/down_proj/MatMul",
                    List.of(prod, b.weight(weightPrefix + ".down_proj.MatMul.weight", intermediate, hidden)));
        }
    }

    /** ORT GenAI's model builder with GroupQueryAttention. */
    private static final class OrtGenAi extends Decoder {
        private final boolean packed;

        OrtGenAi(Dialect dialect, long seed) {
            super(dialect, seed);
            this.packed = dialect == Dialect.GQA_PACKED;
        }

        ModelProto build(int layers) {
            b.input("input_ids", DataType.INT64, "batch_size", "sequence_length");
            b.input("attention_mask", DataType.INT64, "batch_size", "total_sequence_length");
            if (!packed) {
                b.input("position_ids", DataType.INT64, "batch_size", "sequence_length");
            }
            kvIo(layers);

            // seqlens_k = sum(mask) - 1 and total_sequence_length = mask.shape[1], both int32, as GQA wants.
            String sum = b.node("ReduceSum", "/model/attn_mask_reformat/attn_mask_subgraph/ReduceSum",
                    List.of("attention_mask", b.constant("/model/constants/TensorProto.INT64/1D/1", false, 1)),
                    intAttr("keepdims", 0));
            String one = b.constant("/model/constants/TensorProto.INT64/0D/1", true, 1);
            String minusOne = b.node("Sub", "/model/attn_mask_reformat/attn_mask_subgraph/Sub", List.of(sum, one));
            String seqlensK = b.node("Cast", "/model/attn_mask_reformat/attn_mask_subgraph/Sub/Cast",
                    List.of(minusOne), intAttr("to", DataType.INT32_VALUE));
            String shape = b.node("Shape", "/model/attn_mask_reformat/attn_mask_subgraph/Shape", List.of("attention_mask"));
            String total = b.node("Gather", "/model/attn_mask_reformat/attn_mask_subgraph/Gather",
                    List.of(shape, one), intAttr("axis", 0));
            String totalLen = b.node("Cast", "/model/attn_mask_reformat/attn_mask_subgraph/Gather/Cast",
                    List.of(total), intAttr("to", DataType.INT32_VALUE));
            String cos = b.floats("cos_cache", new long[] {MAX_POSITIONS, headDim / 2}, rotaryTable(false));
            String sin = b.floats("sin_cache", new long[] {MAX_POSITIONS, headDim / 2}, rotaryTable(true));

            String residual = b.node("Gather", "/model/embed_tokens/Gather",
                    List.of(b.weight("model.embed_tokens.weight", VOCAB, hidden), "input_ids"));
            String normed = b.nodeWithOutputs("SimplifiedLayerNormalization", "", "/model/layers.0/input_layernorm/LayerNorm",
                    List.of(residual, b.normScale("model.layers.0.input_layernorm.weight", hidden)),
                    List.of("/model/layers.0/input_layernorm/output_0"),
                    floatAttr("epsilon", EPSILON), intAttr("axis", -1), intAttr("stash_type", 1)).get(0);
            for (int i = 0; i < layers; i++) {
                String p = "/model/layers." + i;
                String w = "model.layers." + i;
                String attn = attention(i, normed, seqlensK, totalLen, cos, sin);
                String o = b.node("MatMul", p + "/attn/o_proj/MatMul",
                        List.of(attn, b.weight(w + ".attn.o_proj.MatMul.weight", hidden, hidden)));
                List<String> post = skipNorm(p + "/post_attention_layernorm", residual, o,
                        w + ".post_attention_layernorm.weight", true);
                String mlp = swiGlu(p + "/mlp", w + ".mlp", post.get(0));
                boolean last = i == layers - 1;
                String next = last ? "/model/layers." + layers + "/final_norm_layernorm"
                        : "/model/layers." + (i + 1) + "/input_layernorm";
                String nextWeight = last ? "model.layers." + layers + ".final_norm_layernorm.weight"
                        : "model.layers." + (i + 1) + ".input_layernorm.weight";
                List<String> pre = skipNorm(next, post.get(3), mlp, nextWeight, !last);
                normed = pre.get(0);
                residual = last ? null : pre.get(3);
            }
            b.nodeWithOutputs("MatMul", "", "/lm_head/MatMul",
                    List.of(normed, b.weight("lm_head.MatMul.weight", hidden, VOCAB)), List.of("logits"));
            return b.model(8, 14, "onnxruntime-genai");
        }

        private String attention(int i, String x, String seqlensK, String totalLen, String cos, String sin) {
            String p = "/model/layers." + i + "/attn";
            String w = "model.layers." + i + ".attn";
            int kvWidth = KV_HEADS * headDim;
            if (packed) {
                String packedQkv = b.node("MatMul", p + "/qkv_proj/MatMul",
                        List.of(x, b.weight(w + ".qkv_proj.MatMul.weight", hidden, hidden + 2 * kvWidth)));
                return gqa(i, List.of(packedQkv, "", ""), List.of(seqlensK, totalLen, cos, sin), 1);
            }
            String q = b.node("MatMul", p + "/q_proj/MatMul", List.of(x, b.weight(w + ".q_proj.MatMul.weight", hidden, hidden)));
            String k = b.node("MatMul", p + "/k_proj/MatMul", List.of(x, b.weight(w + ".k_proj.MatMul.weight", hidden, kvWidth)));
            String v = b.node("MatMul", p + "/v_proj/MatMul", List.of(x, b.weight(w + ".v_proj.MatMul.weight", hidden, kvWidth)));
            String qRot = b.node("RotaryEmbedding", MICROSOFT, p + "/q_rotary/RotaryEmbedding",
                    List.of(q, "position_ids", cos, sin), intAttr("interleaved", 0));
            String kRot = b.node("RotaryEmbedding", MICROSOFT, p + "/k_rotary/RotaryEmbedding",
                    List.of(k, "position_ids", cos, sin), intAttr("interleaved", 0));
            return gqa(i, List.of(qRot, kRot, v), List.of(seqlensK, totalLen), 0);
        }

        /** GroupQueryAttention(q, k, v, past_key, past_value, seqlens_k, total_sequence_length[, cos, sin]). */
        private String gqa(int i, List<String> qkv, List<String> rest, int doRotary) {
            String p = "/model/layers." + i + "/attn/GroupQueryAttention";
            List<String> inputs = new ArrayList<>(qkv);
            inputs.addAll(List.of(pastKey(i), pastValue(i)));
            inputs.addAll(rest);
            return b.nodeWithOutputs("GroupQueryAttention", MICROSOFT, p, inputs,
                    List.of(p + "/output_0", presentKey(i), presentValue(i)),
                    intAttr("num_heads", HEADS), intAttr("kv_num_heads", KV_HEADS), intAttr("do_rotary", doRotary),
                    intAttr("rotary_interleaved", 0), intAttr("local_window_size", -1),
                    floatAttr("scale", (float) (1.0 / Math.sqrt(headDim))), floatAttr("softcap", 0f)).get(0);
        }

        /** SkipSimplifiedLayerNormalization: output 0 the normalised sum, output 3 (if exposed) the sum itself. */
        private List<String> skipNorm(String name, String residual, String branch, String weight, boolean exposeSum) {
            List<String> outputs = exposeSum ? List.of(name + "/output_0", "", "", name + "/output_3")
                    : List.of(name + "/output_0");
            return b.nodeWithOutputs("SkipSimplifiedLayerNormalization", MICROSOFT, name + "/SkipLayerNorm",
                    List.of(residual, branch, b.normScale(weight, hidden)), outputs, floatAttr("epsilon", EPSILON));
        }
    }

    /** torch.onnx / optimum at opset 23 with the standard Attention operator. */
    private static final class OnnxAttention extends Decoder {
        private String cos;
        private String sin;
        private String mask;

        OnnxAttention(long seed) {
            super(Dialect.ONNX_ATTENTION, seed);
        }

        ModelProto build(int layers) {
            b.input("input_ids", DataType.INT64, "batch_size", "sequence_length");
            b.input("attention_mask", DataType.INT64, "batch_size", "total_sequence_length");
            b.input("position_ids", DataType.INT64, "batch_size", "sequence_length");
            kvIo(layers);
            rotary();
            causalMask();

            String residual = b.node("Gather", "/model/embed_tokens/Gather",
                    List.of(b.weight("model.embed_tokens.weight", VOCAB, hidden), "input_ids"));
            for (int i = 0; i < layers; i++) {
                String p = "/model/layers." + i;
                String w = "model.layers." + i;
                String normed = rmsNorm(p + "/input_layernorm", residual, w + ".input_layernorm.weight");
                String attn = attention(i, normed);
                String afterAttn = b.node("Add", p + "/Add", List.of(residual, attn));
                String normed2 = rmsNorm(p + "/post_attention_layernorm", afterAttn, w + ".post_attention_layernorm.weight");
                String mlp = swiGlu(p + "/mlp", w + ".mlp", normed2);
                residual = b.node("Add", p + "/Add_1", List.of(afterAttn, mlp));
            }
            String last = rmsNorm("/model/norm", residual, "model.norm.weight");
            b.nodeWithOutputs("MatMul", "", "/lm_head/MatMul", List.of(last, b.weight("lm_head.weight", hidden, VOCAB)),
                    List.of("logits"));
            return b.model(11, 23, "pytorch");
        }

        private String rmsNorm(String name, String x, String weight) {
            return b.node("RMSNormalization", name + "/RMSNormalization", List.of(x, b.normScale(weight, hidden)),
                    floatAttr("epsilon", EPSILON), intAttr("axis", -1));
        }

        /** cos/sin [batch, 1, seq, head_dim] from position_ids, as transformers' LlamaRotaryEmbedding computes them. */
        private void rotary() {
            int half = headDim / 2;
            float[] invFreq = new float[half];
            for (int j = 0; j < half; j++) {
                invFreq[j] = (float) Math.pow(ROPE_THETA, -2.0 * j / headDim);
            }
            String p = "/model/rotary_emb";
            String inv = b.floats("model.rotary_emb.inv_freq_expanded", new long[] {1, half, 1}, invFreq);
            String pos = b.node("Cast", p + "/Cast", List.of("position_ids"), intAttr("to", DataType.FLOAT_VALUE));
            String posRow = b.node("Unsqueeze", p + "/Unsqueeze", List.of(pos, b.longs("const_axes_1", 1)));
            String freqs = b.node("MatMul", p + "/MatMul", List.of(inv, posRow)); // [batch, half, seq]
            String freqsT = b.node("Transpose", p + "/Transpose", List.of(freqs), intsAttr("perm", 0, 2, 1));
            String emb = b.node("Concat", p + "/Concat", List.of(freqsT, freqsT), intAttr("axis", -1));
            cos = b.node("Unsqueeze", p + "/Unsqueeze_cos", List.of(b.node("Cos", p + "/Cos", List.of(emb)), "const_axes_1"));
            sin = b.node("Unsqueeze", p + "/Unsqueeze_sin", List.of(b.node("Sin", p + "/Sin", List.of(emb)), "const_axes_1"));
        }

        /**
         * A boolean [batch, 1, seq, total] mask: query i (at position past + i) sees key j when j <= past + i
         * and attention_mask[j] is 1. Built explicitly because is_causal aligns the triangle to the top left.
         */
        private void causalMask() {
            String p = "/model/causal_mask";
            String zero = b.constant("/model/constants/INT64/0D/0", true, 0);
            String one = b.constant("/model/constants/INT64/0D/1", true, 1);
            String total = b.node("Gather", p + "/Gather_total",
                    List.of(b.node("Shape", p + "/Shape_mask", List.of("attention_mask")), one), intAttr("axis", 0));
            String seq = b.node("Gather", p + "/Gather_seq",
                    List.of(b.node("Shape", p + "/Shape_ids", List.of("input_ids")), one), intAttr("axis", 0));
            String past = b.node("Sub", p + "/Sub", List.of(total, seq));
            String queries = b.node("Range", p + "/Range_q", List.of(past, total, one));
            String keys = b.node("Range", p + "/Range_k", List.of(zero, total, one));
            String queryCol = b.node("Unsqueeze", p + "/Unsqueeze_q", List.of(queries, "const_axes_1"));
            String causal = b.node("LessOrEqual", p + "/LessOrEqual", List.of(keys, queryCol)); // [seq, total]
            String padding = b.node("Cast", p + "/Cast", List.of("attention_mask"), intAttr("to", DataType.BOOL_VALUE));
            String padding4d = b.node("Unsqueeze", p + "/Unsqueeze_pad", List.of(padding, b.longs("const_axes_1_2", 1, 2)));
            mask = b.node("And", p + "/And", List.of(causal, padding4d));
        }

        private String attention(int i, String x) {
            String p = "/model/layers." + i + "/self_attn";
            String w = "model.layers." + i + ".self_attn";
            int kvWidth = KV_HEADS * headDim;
            String q = heads(p + "/q", b.node("MatMul", p + "/q_proj/MatMul",
                    List.of(x, b.weight(w + ".q_proj.weight", hidden, hidden))), HEADS);
            String k = heads(p + "/k", b.node("MatMul", p + "/k_proj/MatMul",
                    List.of(x, b.weight(w + ".k_proj.weight", hidden, kvWidth))), KV_HEADS);
            String v = heads(p + "/v", b.node("MatMul", p + "/v_proj/MatMul",
                    List.of(x, b.weight(w + ".v_proj.weight", hidden, kvWidth))), KV_HEADS);
            String qr = applyRotary(p + "/q_rot", q);
            String kr = applyRotary(p + "/k_rot", k);
            String y = b.nodeWithOutputs("Attention", "", p + "/Attention",
                    List.of(qr, kr, v, mask, pastKey(i), pastValue(i)),
                    List.of(p + "/Attention/output_0", presentKey(i), presentValue(i)),
                    floatAttr("scale", (float) (1.0 / Math.sqrt(headDim)))).get(0);
            String bsnh = b.node("Transpose", p + "/Transpose_out", List.of(y), intsAttr("perm", 0, 2, 1, 3));
            String merged = b.node("Reshape", p + "/Reshape_out", List.of(bsnh, b.longs(p + "/shape_out", 0, 0, hidden)));
            return b.node("MatMul", p + "/o_proj/MatMul", List.of(merged, b.weight(w + ".o_proj.weight", hidden, hidden)));
        }

        /** [batch, seq, heads*head_dim] -> [batch, heads, seq, head_dim]. */
        private String heads(String name, String x, int count) {
            String split = b.node("Reshape", name + "/Reshape", List.of(x, b.longs(name + "/shape", 0, 0, count, headDim)));
            return b.node("Transpose", name + "/Transpose", List.of(split), intsAttr("perm", 0, 2, 1, 3));
        }

        /** x * cos + rotate_half(x) * sin, with rotate_half(x) = concat(-x2, x1). */
        private String applyRotary(String name, String x) {
            int half = headDim / 2;
            String axis = b.longs(name + "/axes", 3);
            String x1 = b.node("Slice", name + "/Slice_1",
                    List.of(x, b.longs(name + "/start_1", 0), b.longs(name + "/end_1", half), axis));
            String x2 = b.node("Slice", name + "/Slice_2",
                    List.of(x, b.longs(name + "/start_2", half), b.longs(name + "/end_2", Long.MAX_VALUE), axis));
            String rotated = b.node("Concat", name + "/Concat",
                    List.of(b.node("Neg", name + "/Neg", List.of(x2)), x1), intAttr("axis", -1));
            String xCos = b.node("Mul", name + "/Mul_cos", List.of(x, cos));
            String rotSin = b.node("Mul", name + "/Mul_sin", List.of(rotated, sin));
            return b.node("Add", name + "/Add", List.of(xCos, rotSin));
        }
    }
}
