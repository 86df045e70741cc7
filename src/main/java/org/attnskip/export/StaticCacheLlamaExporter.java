package org.attnskip.export;

import ai.onnx.proto.OnnxMl.ModelProto;
import ai.onnx.proto.OnnxMl.OperatorSetIdProto;
import ai.onnx.proto.OnnxMl.TensorProto.DataType;
import org.attnskip.onnx.ExternalDataWriter;

import static org.attnskip.export.OnnxGraphBuilder.in;
import static org.attnskip.onnx.Attributes.floatAttr;
import static org.attnskip.onnx.Attributes.intAttr;
import static org.attnskip.onnx.Attributes.intsAttr;

/**
 * Builds a Llama-family decoder in the standard ONNX LLM spelling of opsets 23 and 24, the one
 * onnxscript-based exporters and recent torch.onnx write, with a static cache:
 * <pre>
 *   inputs:  input_ids [batch, seq], position_ids [batch, seq], write_indices [batch], nonpad_kv_seqlen [batch],
 *            key_cache.{i} / value_cache.{i} [batch, max_sequence_length, kv_heads * head_dim]
 *   per layer: RMSNormalization -> MatMul(x, Transpose(W)) for q, k, v -> RotaryEmbedding (ONNX domain) on q, k
 *              -> TensorScatter(key_cache.{i}, k, write_indices), the same for v  => present_key_cache.{i} / ...value...
 *              -> Attention(q, present key, present value, nonpad_kv_seqlen), is_causal -> MatMul o_proj -> Add
 *              -> RMSNormalization -> gate/up MatMuls, Sigmoid, Mul, Mul, down MatMul -> Add
 *   outputs: logits [batch, seq, vocab], present_key_cache.{i} / present_value_cache.{i}
 * </pre>
 * The cache buffers never grow: a run writes its positions at {@code write_indices} and the
 * attention reads the whole buffer, its first {@code nonpad_kv_seqlen} positions being real
 * (write_indices + seq). With {@code is_causal} and {@code nonpad_kv_seqlen}, Attention-24 aligns
 * the causal mask to the bottom right: query i of the run sees keys up to write_index + i.
 * Weights are stored [out][in] as torch keeps them; rotary pairs are (2j, 2j+1) (interleaved).
 */
public final class StaticCacheLlamaExporter {
    /** TensorScatter and Attention's nonpad_kv_seqlen are opset 24. */
    public static final int OPSET = 24;
    public static final int IR_VERSION = 11;
    public static final String WRITE_INDICES = "write_indices";
    public static final String NONPAD_KV_SEQLEN = "nonpad_kv_seqlen";

    private static final int INT64 = DataType.INT64_VALUE;

    private final LlamaWeightSource weights;
    private final LlamaConfig cfg;
    private final ExportDtype dtype;
    private final OnnxGraphBuilder g;
    private final WeightInitializers init;
    private String cosCache;
    private String sinCache;

    private StaticCacheLlamaExporter(LlamaWeightSource weights, ExportDtype dtype, ExternalDataWriter externalData) {
        this.weights = weights;
        this.cfg = weights.config();
        this.dtype = dtype;
        this.g = new OnnxGraphBuilder("attnskip_llama_static_cache", externalData);
        this.init = new WeightInitializers(g, dtype);
    }

    public static ModelProto export(LlamaWeightSource weights, ExportDtype dtype) {
        return new StaticCacheLlamaExporter(weights, dtype, null).build();
    }

    public static ModelProto export(LlamaWeightSource weights, ExportDtype dtype, ExternalDataWriter externalData) {
        return new StaticCacheLlamaExporter(weights, dtype, externalData).build();
    }

    public static String keyCache(int layer) {
        return "key_cache." + layer;
    }

    public static String valueCache(int layer) {
        return "value_cache." + layer;
    }

    public static String presentKeyCache(int layer) {
        return "present_key_cache." + layer;
    }

    public static String presentValueCache(int layer) {
        return "present_value_cache." + layer;
    }

    private ModelProto build() {
        cfg.requireConsistentShape();
        declareIo();
        String h = g.op("Gather", "/model/embed_tokens/Gather",
                in(init.weight("model.embed_tokens.weight", new long[] {cfg.vocabSize(), cfg.dim()}, part(WeightPart.EMBEDDING, 0)),
                        "input_ids"));
        RotaryTables tables = RotaryTables.of(cfg);
        long[] dims = {tables.positions, tables.pairs};
        cosCache = g.initializer(init.tensor("cos_cache", dims, tables.cos));
        sinCache = g.initializer(init.tensor("sin_cache", dims, tables.sin));
        for (int i = 0; i < cfg.layers(); i++) {
            h = layer(i, h);
        }
        String normed = rmsNorm("/model/norm", LogitsToKeep.slice(g, h), "model.norm.weight", part(WeightPart.FINAL_NORM, 0));
        String classifier = weights.classifierIsEmbedding() ? "model.embed_tokens.weight"
                : init.weight("lm_head.weight", new long[] {cfg.vocabSize(), cfg.dim()}, part(WeightPart.CLASSIFIER, 0));
        g.node("MatMul", "/lm_head/MatMul", in(normed, transposed("/lm_head", classifier)), in("logits"));
        return ModelProto.newBuilder()
                .setIrVersion(IR_VERSION)
                .addOpsetImport(OperatorSetIdProto.newBuilder().setDomain("").setVersion(OPSET))
                .setProducerName(LlamaOnnxExporter.PRODUCER)
                .setDocString("Llama-family decoder exported by attnskip, static-cache graph (ONNX opset 24: RMSNormalization,"
                        + " RotaryEmbedding, Attention, TensorScatter): " + cfg.layers() + " layers, dim " + cfg.dim() + ", "
                        + cfg.heads() + " heads, " + cfg.kvHeads() + " KV heads, " + dtype.cliName()
                        + ". Weights are stored [out][in]; rotary pairs are (2j, 2j+1).")
                .setGraph(g.build())
                .build();
    }

    private void declareIo() {
        int t = dtype.onnxType();
        String kvHidden = Integer.toString(cfg.kvDim());
        g.input("input_ids", INT64, "batch_size", "sequence_length");
        g.input("position_ids", INT64, "batch_size", "sequence_length");
        LogitsToKeep.declare(g);
        g.input(WRITE_INDICES, INT64, "batch_size");
        g.input(NONPAD_KV_SEQLEN, INT64, "batch_size");
        for (int i = 0; i < cfg.layers(); i++) {
            g.input(keyCache(i), t, "batch_size", "max_sequence_length", kvHidden);
            g.input(valueCache(i), t, "batch_size", "max_sequence_length", kvHidden);
        }
        g.output("logits", t, "batch_size", LogitsToKeep.LOGITS_LENGTH, Integer.toString(cfg.vocabSize()));
        for (int i = 0; i < cfg.layers(); i++) {
            g.output(presentKeyCache(i), t, "batch_size", "max_sequence_length", kvHidden);
            g.output(presentValueCache(i), t, "batch_size", "max_sequence_length", kvHidden);
        }
    }

    private String layer(int i, String h) {
        String p = "/model/layers." + i;
        String wp = "model.layers." + i + ".";
        String x = rmsNorm(p + "/input_layernorm", h, wp + "input_layernorm.weight", part(WeightPart.ATTN_NORM, i));

        String q = projection(p + "/self_attn/q_proj", x, wp + "self_attn.q_proj", i, WeightPart.WQ, WeightPart.BQ);
        String k = projection(p + "/self_attn/k_proj", x, wp + "self_attn.k_proj", i, WeightPart.WK, WeightPart.BK);
        String v = projection(p + "/self_attn/v_proj", x, wp + "self_attn.v_proj", i, WeightPart.WV, WeightPart.BV);
        q = rotary(p + "/self_attn/q_rotary", q, cfg.heads());
        k = rotary(p + "/self_attn/k_rotary", k, cfg.kvHeads());
        g.node("TensorScatter", p + "/self_attn/key_cache/TensorScatter", in(keyCache(i), k, WRITE_INDICES),
                in(presentKeyCache(i)), intAttr("axis", 1));
        g.node("TensorScatter", p + "/self_attn/value_cache/TensorScatter", in(valueCache(i), v, WRITE_INDICES),
                in(presentValueCache(i)), intAttr("axis", 1));
        String attn = g.op("Attention", p + "/self_attn/Attention",
                in(q, presentKeyCache(i), presentValueCache(i), "", "", "", NONPAD_KV_SEQLEN),
                intAttr("q_num_heads", cfg.heads()), intAttr("kv_num_heads", cfg.kvHeads()), intAttr("is_causal", 1),
                floatAttr("scale", (float) (1.0 / Math.sqrt(cfg.headDim()))));
        String o = projection(p + "/self_attn/o_proj", attn, wp + "self_attn.o_proj", i, WeightPart.WO, null);
        h = g.op("Add", p + "/self_attn_residual/Add", in(h, o));

        String y = rmsNorm(p + "/post_attention_layernorm", h, wp + "post_attention_layernorm.weight", part(WeightPart.FFN_NORM, i));
        String gate = projection(p + "/mlp/gate_proj", y, wp + "mlp.gate_proj", i, WeightPart.W1, null);
        String up = projection(p + "/mlp/up_proj", y, wp + "mlp.up_proj", i, WeightPart.W3, null);
        String silu = g.op("Mul", p + "/mlp/act_fn/Mul", in(gate, g.op("Sigmoid", p + "/mlp/act_fn/Sigmoid", in(gate))));
        String down = projection(p + "/mlp/down_proj", g.op("Mul", p + "/mlp/Mul", in(silu, up)), wp + "mlp.down_proj",
                i, WeightPart.W2, null);
        return g.op("Add", p + "/mlp_residual/Add", in(h, down));
    }

    /** x times W^T, W stored [out][in] and transposed in the graph (folded by ONNX Runtime at load), plus a bias. */
    private String projection(String p, String x, String weightName, int layer, WeightPart weightPart, WeightPart biasPart) {
        WeightRows outIn = part(weightPart, layer);
        String weight = init.weight(weightName + ".weight", new long[] {outIn.rows(), outIn.cols()}, outIn);
        String y = g.op("MatMul", p + "/MatMul", in(x, transposed(p, weight)));
        return biasPart == null || !cfg.qkvBias() ? y : g.op("Add", p + "/Add",
                in(y, init.weight(weightName + ".bias", new long[] {outIn.rows()}, part(biasPart, layer))));
    }

    private WeightRows part(WeightPart part, int layer) {
        return weights.weight(part, layer);
    }

    private String transposed(String p, String weight) {
        return g.op("Transpose", p + "/Transpose", in(weight), intsAttr("perm", 1, 0));
    }

    private String rmsNorm(String p, String x, String gammaName, WeightRows gamma) {
        return g.op("RMSNormalization", p + "/RMSNormalization",
                in(x, init.weight(gammaName, new long[] {(long) gamma.rows() * gamma.cols()}, gamma)),
                floatAttr("epsilon", cfg.normEps()), intAttr("axis", -1));
    }

    /** ONNX RotaryEmbedding-23 on [batch, seq, heads * head_dim] at position_ids, pairs (2j, 2j+1). */
    private String rotary(String p, String x, int heads) {
        return g.op("RotaryEmbedding", p + "/RotaryEmbedding", in(x, cosCache, sinCache, "position_ids"),
                intAttr("interleaved", 1), intAttr("num_heads", heads));
    }
}
