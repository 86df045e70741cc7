package org.attnskip.layout;

import ai.onnx.proto.OnnxMl.ModelProto;
import ai.onnx.proto.OnnxMl.TensorProto.DataType;
import ai.onnx.proto.OnnxMl.TypeProto;
import ai.onnx.proto.OnnxMl.ValueInfoProto;
import org.attnskip.onnx.Tensors;

import java.util.List;

import static org.attnskip.onnx.Attributes.floatAttr;
import static org.attnskip.onnx.Attributes.intAttr;
import static org.attnskip.onnx.Attributes.intsAttr;

/**
 * A one-layer GPT-2 as torch.onnx writes Hugging Face's {@code GPT2Model} with {@code use_cache}:
 * token and learned position embeddings (positions counted on from the past's length, read from
 * {@code past_0}'s shape), LayerNormalization, one c_attn MatMul split into q, k, v, the key
 * transposed ([B, H, Dh, T]) and grown by Concat on {@code past_0} [2, B, H, P, Dh] (K and V
 * stacked), the stacked {@code present_0} written back, the causal mask sliced from a
 * {@code [1, 1, n_ctx, n_ctx]} buffer as {@code w * b - 1e4 * (1 - b)}, and a Gelu MLP. There is no
 * LM head: the outputs are {@code present_0} and then the final LayerNorm's output under a
 * numeric name with no declared shape, in that order. Random seeded weights; test-only.
 */
final class OneLayerGpt2 {
    static final int HIDDEN = 16;
    static final int HEADS = 2;
    static final int HEAD_DIM = HIDDEN / HEADS;
    static final int FFN = 4 * HIDDEN;
    static final int VOCAB = 50;
    static final int POSITIONS = 64;
    static final float EPSILON = 1e-5f;
    /** The last hidden state's name: torch numbers the values it does not name. */
    static final String OUTPUT = "152";
    static final String PAST = "past_0";
    static final String PRESENT = "present_0";

    private final ProtoGraphBuilder b;
    /** Positions fed as the input position_ids (optimum's spelling) instead of counted from past_0's length. */
    private final boolean positionIdsInput;
    /** Weights as the graph stores them, for the test's own forward pass. */
    final float[] wte;
    final float[] wpe;
    final float[] ln2Scale;
    final float[] ln2Bias;
    final float[] lnfScale;
    final float[] lnfBias;
    final float[] fcW;
    final float[] fcB;
    final float[] projW;
    final float[] projB;

    OneLayerGpt2(long seed, boolean positionIdsInput) {
        this.positionIdsInput = positionIdsInput;
        b = new ProtoGraphBuilder("torch_jit", seed);
        wte = values(b.weight("wte.weight", VOCAB, HIDDEN));
        wpe = values(b.weight("wpe.weight", POSITIONS, HIDDEN));
        ln2Scale = values(b.normScale("h.0.ln_2.weight", HIDDEN));
        ln2Bias = values(b.normScale("h.0.ln_2.bias", HIDDEN));
        lnfScale = values(b.normScale("ln_f.weight", HIDDEN));
        lnfBias = values(b.normScale("ln_f.bias", HIDDEN));
        fcW = values(b.weight("h.0.mlp.c_fc.weight", HIDDEN, FFN));
        fcB = values(b.normScale("h.0.mlp.c_fc.bias", FFN));
        projW = values(b.weight("h.0.mlp.c_proj.weight", FFN, HIDDEN));
        projB = values(b.normScale("h.0.mlp.c_proj.bias", HIDDEN));
    }

    private float[] values(String initializer) {
        return Tensors.floats(b.initializerNamed(initializer), null);
    }

    ModelProto build() {
        b.input("input_ids", DataType.INT64, "batch_size", "seq_len");
        b.input(PAST, DataType.FLOAT, 2, "batch_size", HEADS, "past_seq_len", HEAD_DIM);

        String h0 = b.node("Add", "Add_embeddings", List.of(
                b.node("Gather", "Gather_wte", List.of("wte.weight", "input_ids")),
                b.node("Gather", "Gather_wpe", List.of("wpe.weight", positions()))));

        String x = layerNorm("h.0.ln_1", h0, b.normScale("h.0.ln_1.weight", HIDDEN), b.normScale("h.0.ln_1.bias", HIDDEN));
        String qkv = linear("h.0.attn.c_attn", x, HIDDEN, 3 * HIDDEN);
        List<String> parts = b.nodeWithOutputs("Split", "", "Split_qkv",
                List.of(qkv, b.longs("split_sizes", HIDDEN, HIDDEN, HIDDEN)),
                List.of("Split_qkv/output_0", "Split_qkv/output_1", "Split_qkv/output_2"), intAttr("axis", 2));
        String q = heads("q", parts.get(0), 0, 2, 1, 3);
        String k = heads("k", parts.get(1), 0, 2, 3, 1);
        String v = heads("v", parts.get(2), 0, 2, 1, 3);

        String pastKey = b.node("Transpose", "Transpose_past_key", List.of(
                b.node("Gather", "Gather_past_key", List.of(PAST, b.initializer(Tensors.longTensor("const_k", new long[0], 0))),
                        intAttr("axis", 0))), intsAttr("perm", 0, 1, 3, 2));
        String pastValue = b.node("Gather", "Gather_past_value",
                List.of(PAST, b.initializer(Tensors.longTensor("const_v", new long[0], 1))), intAttr("axis", 0));
        String key = b.node("Concat", "Concat_key", List.of(pastKey, k), intAttr("axis", -1));
        String value = b.node("Concat", "Concat_value", List.of(pastValue, v), intAttr("axis", -2));
        b.nodeWithOutputs("Concat", "", "Concat_present", List.of(
                b.node("Unsqueeze", "Unsqueeze_present_key", List.of(
                        b.node("Transpose", "Transpose_present_key", List.of(key), intsAttr("perm", 0, 1, 3, 2)),
                        b.longs("axes_0_k", 0))),
                b.node("Unsqueeze", "Unsqueeze_present_value", List.of(value, b.longs("axes_0_v", 0)))),
                List.of(PRESENT), intAttr("axis", 0));

        String w = b.node("MatMul", "MatMul_scores", List.of(q, key));
        w = b.node("Div", "Div_scale", List.of(w, scalar("const_sqrt_dh", (float) Math.sqrt(HEAD_DIM))));
        String mask = causalSlice(w);
        w = b.node("Sub", "Sub_masked", List.of(b.node("Mul", "Mul_keep", List.of(w, mask)),
                b.node("Mul", "Mul_big", List.of(b.node("Sub", "Sub_not_mask", List.of(scalar("const_one", 1f), mask)),
                        scalar("const_1e4", 1e4f)))));
        String probs = b.node("Softmax", "Softmax", List.of(w), intAttr("axis", -1));
        String a = b.node("MatMul", "MatMul_context", List.of(probs, value));
        a = b.node("Transpose", "Transpose_context", List.of(a), intsAttr("perm", 0, 2, 1, 3));
        a = b.node("Reshape", "Reshape_context", List.of(a, b.longs("shape_merge", 0, 0, HIDDEN)));
        a = linear("h.0.attn.c_proj", a, HIDDEN, HIDDEN);
        String h1 = b.node("Add", "Add_attn_residual", List.of(a, h0));

        String y = layerNorm("h.0.ln_2", h1, "h.0.ln_2.weight", "h.0.ln_2.bias");
        String m = b.node("Add", "Add_fc", List.of(b.node("MatMul", "MatMul_fc", List.of(y, "h.0.mlp.c_fc.weight")),
                "h.0.mlp.c_fc.bias"));
        m = b.node("Gelu", "Gelu", List.of(m));
        m = b.node("Add", "Add_mlp_proj", List.of(b.node("MatMul", "MatMul_mlp_proj", List.of(m, "h.0.mlp.c_proj.weight")),
                "h.0.mlp.c_proj.bias"));
        String h2 = b.node("Add", "Add_mlp_residual", List.of(m, h1));
        b.nodeWithOutputs("LayerNormalization", "", "ln_f", List.of(h2, "ln_f.weight", "ln_f.bias"), List.of(OUTPUT),
                intAttr("axis", -1), floatAttr("epsilon", EPSILON));

        b.output(PRESENT, DataType.FLOAT, 2, "batch_size", HEADS, "total_seq_len", HEAD_DIM);
        b.rawOutput(ValueInfoProto.newBuilder().setName(OUTPUT).setType(TypeProto.newBuilder()
                .setTensorType(TypeProto.Tensor.newBuilder().setElemType(DataType.FLOAT_VALUE))).build());
        return b.model(10, 20, "pytorch");
    }

    /** Positions [1 or B, S]: the input position_ids, or past .. past + S - 1 with the past's length read from past_0's shape. */
    private String positions() {
        if (positionIdsInput) {
            b.input("position_ids", DataType.INT64, "batch_size", "seq_len");
            return "position_ids";
        }
        String pastLength = b.node("Gather", "Gather_past_len", List.of(b.node("Shape", "Shape_past", List.of(PAST)),
                b.longs("const_3", 3)), intAttr("axis", 0));
        String seqLength = b.node("Gather", "Gather_seq_len", List.of(b.node("Shape", "Shape_ids", List.of("input_ids")),
                b.longs("const_1", 1)), intAttr("axis", 0));
        String total = b.node("Add", "Add_total", List.of(pastLength, seqLength));
        String positions = b.node("Range", "Range_positions", List.of(squeeze(pastLength, "past"), squeeze(total, "total"),
                b.initializer(Tensors.longTensor("const_step", new long[0], 1))));
        return b.node("Unsqueeze", "Unsqueeze_positions", List.of(positions, b.longs("axes_0", 0)));
    }

    /** b = bias[:, :, T-S:T, :T] of the lower-triangular [1, 1, n_ctx, n_ctx] buffer, S and T read from the scores. */
    private String causalSlice(String scores) {
        float[] tri = new float[POSITIONS * POSITIONS];
        for (int i = 0; i < POSITIONS; i++) {
            for (int j = 0; j <= i; j++) {
                tri[i * POSITIONS + j] = 1f;
            }
        }
        String bias = b.floats("h.0.attn.bias", new long[] {1, 1, POSITIONS, POSITIONS}, tri);
        String shape = b.node("Shape", "Shape_scores", List.of(scores));
        String s = b.node("Gather", "Gather_scores_rows", List.of(shape, b.longs("const_2", 2)), intAttr("axis", 0));
        String t = b.node("Gather", "Gather_scores_cols", List.of(shape, b.longs("const_3b", 3)), intAttr("axis", 0));
        String start = b.node("Sub", "Sub_mask_start", List.of(t, s));
        String starts = b.node("Concat", "Concat_starts", List.of(start, b.longs("const_0", 0)), intAttr("axis", 0));
        String ends = b.node("Concat", "Concat_ends", List.of(t, t), intAttr("axis", 0));
        return b.node("Slice", "Slice_bias", List.of(bias, starts, ends, b.longs("const_axes_23", 2, 3)));
    }

    private String squeeze(String oneElement, String name) {
        return b.node("Squeeze", "Squeeze_" + name, List.of(oneElement, b.longs("axes_sq_" + name, 0)));
    }

    private String heads(String name, String x, long... perm) {
        String r = b.node("Reshape", "Reshape_" + name, List.of(x, b.longs("shape_" + name, 0, 0, HEADS, HEAD_DIM)));
        return b.node("Transpose", "Transpose_" + name, List.of(r), intsAttr("perm", perm));
    }

    private String linear(String prefix, String x, int in, int out) {
        String w = b.weight(prefix + ".weight", in, out);
        String bias = b.normScale(prefix + ".bias", out);
        return b.node("Add", prefix + "/Add", List.of(b.node("MatMul", prefix + "/MatMul", List.of(x, w)), bias));
    }

    private String layerNorm(String name, String x, String scale, String bias) {
        return b.node("LayerNormalization", name, List.of(x, scale, bias), intAttr("axis", -1), floatAttr("epsilon", EPSILON));
    }

    private String scalar(String name, float value) {
        return b.initializer(Tensors.floatTensor(name, new long[0], new float[] {value}));
    }

    /** One row per token of the stream after the layer with its attention dropped: ln_f(h + MLP(ln_2(h))), h the embeddings. */
    float[][] droppedForward(long[] ids, int past) {
        float[][] out = new float[ids.length][];
        for (int t = 0; t < ids.length; t++) {
            float[] h = new float[HIDDEN];
            for (int j = 0; j < HIDDEN; j++) {
                h[j] = wte[(int) ids[t] * HIDDEN + j] + wpe[(past + t) * HIDDEN + j];
            }
            float[] y = layerNorm(h, ln2Scale, ln2Bias);
            float[] f = new float[FFN];
            for (int o = 0; o < FFN; o++) {
                double acc = fcB[o];
                for (int i = 0; i < HIDDEN; i++) {
                    acc += y[i] * fcW[i * FFN + o];
                }
                f[o] = (float) (0.5 * acc * (1 + org.apache.commons.math3.special.Erf.erf(acc / Math.sqrt(2))));
            }
            for (int o = 0; o < HIDDEN; o++) {
                double acc = projB[o];
                for (int i = 0; i < FFN; i++) {
                    acc += f[i] * projW[i * HIDDEN + o];
                }
                h[o] += (float) acc;
            }
            out[t] = layerNorm(h, lnfScale, lnfBias);
        }
        return out;
    }

    private static float[] layerNorm(float[] x, float[] scale, float[] bias) {
        double mean = 0;
        for (float v : x) {
            mean += v;
        }
        mean /= x.length;
        double var = 0;
        for (float v : x) {
            var += (v - mean) * (v - mean);
        }
        var /= x.length;
        float[] out = new float[x.length];
        for (int i = 0; i < x.length; i++) {
            out[i] = (float) ((x[i] - mean) / Math.sqrt(var + EPSILON) * scale[i] + bias[i]);
        }
        return out;
    }
}
