package org.attnskip.export;

import ai.onnx.proto.OnnxMl.ModelProto;
import org.attnskip.onnx.ExternalDataWriter;
import ai.onnx.proto.OnnxMl.OperatorSetIdProto;
import ai.onnx.proto.OnnxMl.TensorProto.DataType;
import org.attnskip.onnx.Tensors;

import static org.attnskip.export.OnnxGraphBuilder.in;
import static org.attnskip.onnx.Attributes.intAttr;
import static org.attnskip.onnx.Attributes.intsAttr;

/**
 * Builds an ONNX graph (opset 17, standard ops only) of a Llama-family decoder from its weights,
 * with the inputs and outputs of an optimum export:
 * <pre>
 *   input_ids [batch, seq] int64, attention_mask [batch, past+seq] int64, position_ids [batch, seq] int64,
 *   past_key_values.{i}.key / .value [batch, kv_heads, past, head_dim]
 *   -> logits [batch, seq, vocab], present.{i}.key / .value [batch, kv_heads, past+seq, head_dim]
 * </pre>
 * Every layer is spelled out so that its parts can be found by data flow:
 * input_layernorm -> q/k/v_proj MatMuls -> rotary -> KV concat -> attention -> o_proj ->
 * {@code self_attn_residual/Add}, then post_attention_layernorm -> gate/up/down MatMuls ->
 * {@code mlp_residual/Add}. RMSNorm is Pow, ReduceMean, Add, Sqrt, Reciprocal, Mul, Mul, with its
 * statistics in fp32 even in an fp16 graph. MatMul weights are stored [in][out].
 * <p>
 * In fp16 the weights, activations, KV cache and logits are all fp16, like the fp16 exports of
 * optimum and onnxruntime-genai.
 */
public final class LlamaOnnxExporter {
    public static final int OPSET = 17;
    public static final int IR_VERSION = 8;
    public static final String PRODUCER = "attnskip";

    private static final int INT64 = DataType.INT64_VALUE;
    private static final int FLOAT32 = DataType.FLOAT_VALUE;
    private static final int BOOL = DataType.BOOL_VALUE;

    private final LlamaWeightSource weights;
    private final LlamaConfig cfg;
    private final ExportDtype dtype;
    private final OnnxGraphBuilder g;
    private final WeightInitializers init;

    // values shared by every layer, made once before the layers
    private String allowed;
    private String cos;
    private String sin;
    private String negSin;

    private LlamaOnnxExporter(LlamaWeightSource weights, ExportDtype dtype, ExternalDataWriter externalData) {
        this.weights = weights;
        this.cfg = weights.config();
        this.dtype = dtype;
        this.g = new OnnxGraphBuilder("attnskip_llama", externalData);
        this.init = new WeightInitializers(g, dtype);
    }

    /** The whole model in one message, weights inline: for models well under protobuf's 2 GB. */
    public static ModelProto export(LlamaWeightSource weights, ExportDtype dtype) {
        return new LlamaOnnxExporter(weights, dtype, null).build();
    }

    /**
     * The graph with its weights streamed to {@code externalData} as they are declared, a block of
     * rows in memory at a time (a transposed matrix gathers its encoded bytes first); the returned model holds only references to them (and small constants).
     */
    public static ModelProto export(LlamaWeightSource weights, ExportDtype dtype, ExternalDataWriter externalData) {
        return new LlamaOnnxExporter(weights, dtype, externalData).build();
    }

    private ModelProto build() {
        cfg.requireConsistentShape();
        declareIo();
        String h = g.op("Gather", "/model/embed_tokens/Gather",
                in(init.weight("model.embed_tokens.weight", new long[] {cfg.vocabSize(), cfg.dim()}, part(WeightPart.EMBEDDING)),
                        "input_ids"));
        allowed = attentionMaskOf();
        rotaryTables();
        for (int i = 0; i < cfg.layers(); i++) {
            h = layer(i, h);
        }
        String normed = rmsNorm("/model/norm", LogitsToKeep.slice(g, h), part(WeightPart.FINAL_NORM), "model.norm.weight");
        if (weights.classifierIsEmbedding()) {
            // A shared classifier is stored once; ORT folds this Transpose into a constant at load time.
            String classifier = g.op("Transpose", "/lm_head/Transpose", in("model.embed_tokens.weight"), intsAttr("perm", 1, 0));
            g.node("MatMul", "/lm_head/MatMul", in(normed, classifier), new String[] {"logits"});
        } else {
            init.project("/lm_head/MatMul", normed, "lm_head.weight", part(WeightPart.CLASSIFIER), "logits");
        }

        ModelProto.Builder model = ModelProto.newBuilder()
                .setIrVersion(IR_VERSION)
                .addOpsetImport(OperatorSetIdProto.newBuilder().setDomain("").setVersion(OPSET));
        if (dtype.weightBits() > 0) {
            model.addOpsetImport(OperatorSetIdProto.newBuilder().setDomain(FusedLlamaExporter.MICROSOFT).setVersion(1));
        }
        return model
                .setProducerName(PRODUCER)
                .setDocString("Llama-family decoder exported by attnskip: " + cfg.layers() + " layers, dim " + cfg.dim()
                        + ", " + cfg.heads() + " heads, " + cfg.kvHeads() + " KV heads, " + dtype.cliName()
                        + ". MatMul weights are stored [in][out]; rotary pairs are (2j, 2j+1).")
                .setGraph(g.build())
                .build();
    }

    private void declareIo() {
        int t = dtype.onnxType();
        String kv = Integer.toString(cfg.kvHeads());
        String hd = Integer.toString(cfg.headDim());
        g.input("input_ids", INT64, "batch_size", "sequence_length");
        g.input("attention_mask", INT64, "batch_size", "total_sequence_length");
        g.input("position_ids", INT64, "batch_size", "sequence_length");
        LogitsToKeep.declare(g);
        for (int i = 0; i < cfg.layers(); i++) {
            g.input(pastKey(i), t, "batch_size", kv, "past_sequence_length", hd);
            g.input(pastValue(i), t, "batch_size", kv, "past_sequence_length", hd);
        }
        g.output("logits", t, "batch_size", LogitsToKeep.LOGITS_LENGTH, Integer.toString(cfg.vocabSize()));
        for (int i = 0; i < cfg.layers(); i++) {
            g.output(presentKey(i), t, "batch_size", kv, "total_sequence_length", hd);
            g.output(presentValue(i), t, "batch_size", kv, "total_sequence_length", hd);
        }
    }

    public static String pastKey(int layer) {
        return "past_key_values." + layer + ".key";
    }

    public static String pastValue(int layer) {
        return "past_key_values." + layer + ".value";
    }

    public static String presentKey(int layer) {
        return "present." + layer + ".key";
    }

    public static String presentValue(int layer) {
        return "present." + layer + ".value";
    }

    /**
     * Which keys each query may see, [batch, 1, seq, total] bool: key slot t is visible to query s
     * when t <= past + s (causal, in cache slots) and attention_mask[b, t] is 1 (not padding).
     */
    private String attentionMaskOf() {
        String p = "/model/attn_mask";
        String one = g.initializer(Tensors.longTensor(p + "/one", new long[0], 1));
        String zero = g.initializer(Tensors.longTensor(p + "/zero", new long[0], 0));
        String seq = g.op("Gather", p + "/Gather_seq", in(g.op("Shape", p + "/Shape_ids", in("input_ids")), one),
                intAttr("axis", 0));
        String total = g.op("Gather", p + "/Gather_total", in(g.op("Shape", p + "/Shape_mask", in("attention_mask")), one),
                intAttr("axis", 0));
        String past = g.op("Sub", p + "/Sub_past", in(total, seq));
        String querySlots = g.op("Range", p + "/Range_query", in(past, total, one));
        String keySlots = g.op("Range", p + "/Range_key", in(zero, total, one));
        String queryColumn = g.op("Unsqueeze", p + "/Unsqueeze_query", in(querySlots, axes(p + "/axes_1", 1)));
        String keyRow = g.op("Unsqueeze", p + "/Unsqueeze_key", in(keySlots, axes(p + "/axes_0", 0)));
        String causal = g.op("LessOrEqual", p + "/LessOrEqual", in(keyRow, queryColumn));
        String notPadding = g.op("Cast", p + "/Cast", in("attention_mask"), intAttr("to", BOOL));
        String padding4d = g.op("Unsqueeze", p + "/Unsqueeze_mask", in(notPadding, axes(p + "/axes_1_2", 1, 2)));
        return g.op("And", p + "/And", in(causal, padding4d));
    }

    /** cos and sin gathered by position_ids, [batch, 1, seq, headDim/2, 1], ready to broadcast over heads. */
    private void rotaryTables() {
        String p = "/model/rotary_emb";
        RotaryTables tables = RotaryTables.of(cfg);
        long[] dims = {tables.positions, tables.pairs};
        String cosTable = g.initializer(init.tensor("model.rotary_emb.cos_cached", dims, tables.cos));
        String sinTable = g.initializer(init.tensor("model.rotary_emb.sin_cached", dims, tables.sin));
        String axes = axes(p + "/axes_1_4", 1, 4);
        cos = g.op("Unsqueeze", p + "/Unsqueeze_cos",
                in(g.op("Gather", p + "/Gather_cos", in(cosTable, "position_ids")), axes));
        sin = g.op("Unsqueeze", p + "/Unsqueeze_sin",
                in(g.op("Gather", p + "/Gather_sin", in(sinTable, "position_ids")), axes));
        // a - b is computed as a + (-b) (the same float), so each rotation is only Mul and Add.
        negSin = g.op("Neg", p + "/Neg_sin", in(sin));
    }

    private String layer(int i, String hIn) {
        String p = "/model/layers." + i;
        String wp = "model.layers." + i + ".";
        int hd = cfg.headDim();

        String x = rmsNorm(p + "/input_layernorm", hIn, weights.weight(WeightPart.ATTN_NORM, i), wp + "input_layernorm.weight");
        String q = projection(p + "/self_attn/q_proj", wp + "self_attn.q_proj", x, i, WeightPart.WQ, WeightPart.BQ);
        String k = projection(p + "/self_attn/k_proj", wp + "self_attn.k_proj", x, i, WeightPart.WK, WeightPart.BK);
        String v = projection(p + "/self_attn/v_proj", wp + "self_attn.v_proj", x, i, WeightPart.WV, WeightPart.BV);
        q = rotary(p + "/self_attn/q_rotary", heads(p + "/self_attn/q_heads", q, cfg.heads()));
        k = rotary(p + "/self_attn/k_rotary", heads(p + "/self_attn/k_heads", k, cfg.kvHeads()));
        v = heads(p + "/self_attn/v_heads", v, cfg.kvHeads());

        g.node("Concat", p + "/self_attn/k_cache/Concat", in(pastKey(i), k), new String[] {presentKey(i)},
                intAttr("axis", 2));
        g.node("Concat", p + "/self_attn/v_cache/Concat", in(pastValue(i), v), new String[] {presentValue(i)},
                intAttr("axis", 2));
        String keys = repeatKv(p + "/self_attn/k_repeat", presentKey(i));
        String values = repeatKv(p + "/self_attn/v_repeat", presentValue(i));

        String keysT = g.op("Transpose", p + "/self_attn/Transpose_k", in(keys), intsAttr("perm", 0, 1, 3, 2));
        String scores = g.op("MatMul", p + "/self_attn/MatMul_scores", in(q, keysT));
        scores = g.op("Div", p + "/self_attn/Div_scale", in(scores, scalar(p + "/self_attn/sqrt_head_dim",
                (float) Math.sqrt(hd))));
        scores = g.op("Where", p + "/self_attn/Where_mask", in(allowed, scores, scalar(p + "/self_attn/masked_score",
                dtype == ExportDtype.FLOAT16 ? -65504f : -Float.MAX_VALUE)));
        String probs = g.op("Softmax", p + "/self_attn/Softmax", in(scores), intAttr("axis", -1));
        String context = g.op("MatMul", p + "/self_attn/MatMul_context", in(probs, values));
        context = g.op("Transpose", p + "/self_attn/Transpose_context", in(context), intsAttr("perm", 0, 2, 1, 3));
        context = g.op("Reshape", p + "/self_attn/Reshape_context",
                in(context, shape(p + "/self_attn/shape_context", 0, 0, cfg.dim())));
        String attnOut = init.project(p + "/self_attn/o_proj/MatMul", context, wp + "self_attn.o_proj.weight",
                weights.weight(WeightPart.WO, i), null);
        String hMid = g.op("Add", p + "/self_attn_residual/Add", in(hIn, attnOut));

        String y = rmsNorm(p + "/post_attention_layernorm", hMid, weights.weight(WeightPart.FFN_NORM, i),
                wp + "post_attention_layernorm.weight");
        String gate = init.project(p + "/mlp/gate_proj/MatMul", y, wp + "mlp.gate_proj.weight",
                weights.weight(WeightPart.W1, i), null);
        String up = init.project(p + "/mlp/up_proj/MatMul", y, wp + "mlp.up_proj.weight",
                weights.weight(WeightPart.W3, i), null);
        String silu = g.op("Mul", p + "/mlp/act_fn/Mul", in(gate, g.op("Sigmoid", p + "/mlp/act_fn/Sigmoid", in(gate))));
        String gated = g.op("Mul", p + "/mlp/Mul", in(silu, up));
        String mlpOut = init.project(p + "/mlp/down_proj/MatMul", gated, wp + "mlp.down_proj.weight",
                weights.weight(WeightPart.W2, i), null);
        return g.op("Add", p + "/mlp_residual/Add", in(hMid, mlpOut));
    }

    /** x [batch, seq, in] times W^T, plus the bias when the model has them. */
    private String projection(String p, String weightName, String x, int layer, WeightPart weight, WeightPart bias) {
        WeightRows w = weights.weight(weight, layer);
        String y = init.project(p + "/MatMul", x, weightName + ".weight", w, null);
        if (cfg.qkvBias()) {
            y = g.op("Add", p + "/Add", in(y, init.weight(weightName + ".bias", new long[] {w.rows()},
                    weights.weight(bias, layer))));
        }
        return y;
    }

    private WeightRows part(WeightPart part) {
        return weights.weight(part, 0);
    }

    /** [batch, seq, n*headDim] to [batch, n, seq, headDim]. */
    private String heads(String p, String x, int n) {
        String r = g.op("Reshape", p + "/Reshape", in(x, shape(p + "/shape", 0, 0, n, cfg.headDim())));
        return g.op("Transpose", p + "/Transpose", in(r), intsAttr("perm", 0, 2, 1, 3));
    }

    /** Rotates pairs (2j, 2j+1) of each head of x [batch, n, seq, headDim] by the position's angles. */
    private String rotary(String p, String x) {
        String pairs = g.op("Reshape", p + "/Reshape_pairs", in(x, shape(p + "/shape_pairs", 0, 0, 0, -1, 2)));
        String[] parts = g.ops("Split", p + "/Split", 2, in(pairs), intAttr("axis", 4));
        String even = parts[0];
        String odd = parts[1];
        String newEven = g.op("Add", p + "/Add_even", in(
                g.op("Mul", p + "/Mul_even_cos", in(even, cos)),
                g.op("Mul", p + "/Mul_odd_neg_sin", in(odd, negSin))));
        String newOdd = g.op("Add", p + "/Add_odd", in(
                g.op("Mul", p + "/Mul_even_sin", in(even, sin)),
                g.op("Mul", p + "/Mul_odd_cos", in(odd, cos))));
        String joined = g.op("Concat", p + "/Concat", in(newEven, newOdd), intAttr("axis", 4));
        return g.op("Reshape", p + "/Reshape_heads", in(joined, shape(p + "/shape_heads", 0, 0, 0, cfg.headDim())));
    }

    /** Grouped-query attention: KV head j serves query heads j*rep .. j*rep+rep-1, as in llama2.c. */
    private String repeatKv(String p, String kv) {
        int rep = cfg.heads() / cfg.kvHeads();
        if (rep == 1) {
            return kv;
        }
        String grouped = g.op("Unsqueeze", p + "/Unsqueeze", in(kv, axes(p + "/axes", 2)));
        String expanded = g.op("Expand", p + "/Expand", in(grouped, shape(p + "/expand_shape", 1, 1, rep, 1, 1)));
        return g.op("Reshape", p + "/Reshape", in(expanded, shape(p + "/shape", 0, cfg.heads(), -1, cfg.headDim())));
    }

    /** RMSNorm: weight * (x / sqrt(mean(x^2) + eps)), with the statistics in fp32. */
    private String rmsNorm(String p, String x, WeightRows w, String weightName) {
        String x32 = dtype == ExportDtype.FLOAT16 ? g.op("Cast", p + "/Cast", in(x), intAttr("to", FLOAT32)) : x;
        String two = g.initializer(Tensors.floatTensor(p + "/two", new long[0], new float[] {2f}));
        String eps = g.initializer(Tensors.floatTensor(p + "/eps", new long[0], new float[] {cfg.normEps()}));
        String squared = g.op("Pow", p + "/Pow", in(x32, two));
        String mean = g.op("ReduceMean", p + "/ReduceMean", in(squared), intsAttr("axes", -1), intAttr("keepdims", 1));
        String rms = g.op("Sqrt", p + "/Sqrt", in(g.op("Add", p + "/Add", in(mean, eps))));
        String normed = g.op("Mul", p + "/Mul", in(x32, g.op("Reciprocal", p + "/Reciprocal", in(rms))));
        if (dtype == ExportDtype.FLOAT16) {
            normed = g.op("Cast", p + "/Cast_1", in(normed), intAttr("to", dtype.onnxType()));
        }
        return g.op("Mul", p + "/Mul_1", in(normed, init.weight(weightName, new long[] {w.cols()}, w)));
    }

    private String scalar(String name, float value) {
        return g.initializer(init.tensor(name, new long[0], new float[] {value}));
    }

    private String shape(String name, long... dims) {
        return g.initializer(Tensors.longVector(name, dims));
    }

    private String axes(String name, long... axes) {
        return g.initializer(Tensors.longVector(name, axes));
    }
}
