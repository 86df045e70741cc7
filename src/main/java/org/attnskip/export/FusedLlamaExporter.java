package org.attnskip.export;

import ai.onnx.proto.OnnxMl.ModelProto;
import ai.onnx.proto.OnnxMl.OperatorSetIdProto;
import ai.onnx.proto.OnnxMl.TensorProto.DataType;
import org.attnskip.onnx.BadInputException;
import org.attnskip.onnx.ExternalDataWriter;
import org.attnskip.onnx.Tensors;

import static org.attnskip.export.LlamaOnnxExporter.pastKey;
import static org.attnskip.export.LlamaOnnxExporter.pastValue;
import static org.attnskip.export.LlamaOnnxExporter.presentKey;
import static org.attnskip.export.LlamaOnnxExporter.presentValue;
import static org.attnskip.export.OnnxGraphBuilder.in;
import static org.attnskip.onnx.Attributes.floatAttr;
import static org.attnskip.onnx.Attributes.intAttr;
import static org.attnskip.onnx.Attributes.intsAttr;

/**
 * Builds the fused flavour of a Llama-family decoder, spelled as ONNX Runtime's model builder
 * (onnxruntime-genai) spells a Llama layer, so that per-node overhead stops dominating small models:
 * <pre>
 *   SimplifiedLayerNormalization (layer 0's input norm)
 *   per layer: MatMul q|k|v (packed) [+ Add bias] -> com.microsoft::GroupQueryAttention -> MatMul o_proj
 *              -> SkipSimplifiedLayerNormalization (residual add + post-attention norm)
 *              -> MatMul gate, MatMul up, Sigmoid, Mul, Mul, MatMul down
 *              -> SkipSimplifiedLayerNormalization (residual add + next layer's input norm, or the final norm)
 *   MatMul lm_head
 * </pre>
 * GroupQueryAttention gets {@code seqlens_k} (real tokens - 1, per row) and
 * {@code total_sequence_length} computed from {@code attention_mask} inside the graph, rotates q and
 * k itself (do_rotary=1 with cos/sin caches; rotary_interleaved=1 because {@link LlamaWeights} rotate
 * adjacent pairs (2j, 2j+1), as llama2.c does) and keeps K/V per KV head, so no repeat is needed.
 * Its CPU kernel rotates only heads whose size is a multiple of 16; smaller heads are rotated by
 * com.microsoft::RotaryEmbedding nodes reading {@code position_ids}, after a Split of the packed
 * projection.
 * <p>
 * Inputs and outputs carry the unfused export's names. {@code past_key_values.*} may be the growing
 * cache of the last run (present = past + new positions) or one fixed-length buffer that is also
 * bound as the {@code present.*} output: GroupQueryAttention then writes the new positions in place.
 */
public final class FusedLlamaExporter {
    public static final String MICROSOFT = "com.microsoft";

    private static final int INT64 = DataType.INT64_VALUE;
    private static final int INT32 = DataType.INT32_VALUE;

    private final LlamaWeightSource weights;
    private final LlamaConfig cfg;
    private final ExportDtype dtype;
    private final boolean rotaryInside;
    private final OnnxGraphBuilder g;
    private final WeightInitializers init;

    // values shared by every layer, made once before the layers
    private String seqlensK;
    private String totalLength;
    private String cosCache;
    private String sinCache;

    private FusedLlamaExporter(LlamaWeightSource weights, ExportDtype dtype, ExternalDataWriter externalData) {
        this.weights = weights;
        this.cfg = weights.config();
        this.dtype = dtype;
        this.rotaryInside = rotaryInsideAttention(cfg);
        this.g = new OnnxGraphBuilder("attnskip_llama_fused", externalData);
        this.init = new WeightInitializers(g, dtype);
    }

    /** The whole model in one message, weights inline: for models well under protobuf's 2 GB. */
    public static ModelProto export(LlamaWeightSource weights, ExportDtype dtype) {
        return new FusedLlamaExporter(weights, dtype, null).build();
    }

    /** The graph with its weights streamed to {@code externalData} as they are declared (see LlamaOnnxExporter). */
    public static ModelProto export(LlamaWeightSource weights, ExportDtype dtype, ExternalDataWriter externalData) {
        return new FusedLlamaExporter(weights, dtype, externalData).build();
    }

    /** GroupQueryAttention's CPU kernel applies rotary itself only to heads of a multiple of 16. */
    public static boolean rotaryInsideAttention(LlamaConfig c) {
        return c.headDim() % 16 == 0;
    }

    private ModelProto build() {
        if (cfg.dim() % cfg.heads() != 0 || cfg.heads() % cfg.kvHeads() != 0 || cfg.headDim() % 8 != 0) {
            throw new BadInputException("the fused graph needs GroupQueryAttention's shapes (heads a multiple of"
                    + " KV heads, head size a multiple of 8): dim " + cfg.dim() + ", heads " + cfg.heads()
                    + ", kv heads " + cfg.kvHeads());
        }
        declareIo();
        String embedded = g.op("Gather", "/model/embed_tokens/Gather",
                in(init.weight("model.embed_tokens.weight", new long[] {cfg.vocabSize(), cfg.dim()},
                        weights.weight(WeightPart.EMBEDDING, 0)),
                        "input_ids"));
        attentionLengths();
        rotaryCaches();

        String residual = embedded;
        String normed = g.op("SimplifiedLayerNormalization", "/model/layers.0/input_layernorm/LayerNorm",
                in(embedded, init.weight("model.layers.0.input_layernorm.weight", new long[] {cfg.dim()},
                        weights.weight(WeightPart.ATTN_NORM, 0))),
                floatAttr("epsilon", cfg.normEps()), intAttr("axis", -1), intAttr("stash_type", 1));
        for (int i = 0; i < cfg.layers(); i++) {
            String[] next = layer(i, residual, normed);
            residual = next[1];
            normed = next[0];
        }
        // The final norm fuses the last residual add: cut after it (a norm per position is cheap; the head is not).
        normed = LogitsToKeep.slice(g, normed);
        if (weights.classifierIsEmbedding()) {
            // A shared classifier is stored once; ORT folds this Transpose into a constant at load time.
            String classifier = g.op("Transpose", "/lm_head/Transpose", in("model.embed_tokens.weight"), intsAttr("perm", 1, 0));
            g.node("MatMul", "/lm_head/MatMul", in(normed, classifier), new String[] {"logits"});
        } else {
            init.project("/lm_head/MatMul", normed, "lm_head.weight", weights.weight(WeightPart.CLASSIFIER, 0), "logits");
        }

        return ModelProto.newBuilder()
                .setIrVersion(LlamaOnnxExporter.IR_VERSION)
                .addOpsetImport(OperatorSetIdProto.newBuilder().setDomain("").setVersion(LlamaOnnxExporter.OPSET))
                .addOpsetImport(OperatorSetIdProto.newBuilder().setDomain(MICROSOFT).setVersion(1))
                .setProducerName(LlamaOnnxExporter.PRODUCER)
                .setDocString("Llama-family decoder exported by attnskip, fused graph (ONNX Runtime contrib ops): "
                        + cfg.layers() + " layers, dim " + cfg.dim() + ", " + cfg.heads() + " heads, " + cfg.kvHeads()
                        + " KV heads, " + dtype.cliName() + ". MatMul weights are stored [in][out]; q|k|v packed in one"
                        + " MatMul; rotary pairs are (2j, 2j+1).")
                .setGraph(g.build())
                .build();
    }

    private void declareIo() {
        int t = dtype.onnxType();
        String kv = Integer.toString(cfg.kvHeads());
        String hd = Integer.toString(cfg.headDim());
        g.input("input_ids", INT64, "batch_size", "sequence_length");
        g.input("attention_mask", INT64, "batch_size", "total_sequence_length");
        if (!rotaryInside) {
            g.input("position_ids", INT64, "batch_size", "sequence_length");
        }
        LogitsToKeep.declare(g);
        for (int i = 0; i < cfg.layers(); i++) {
            g.input(pastKey(i), t, "batch_size", kv, "past_sequence_length", hd);
            g.input(pastValue(i), t, "batch_size", kv, "past_sequence_length", hd);
        }
        g.output("logits", t, "batch_size", LogitsToKeep.LOGITS_LENGTH, Integer.toString(cfg.vocabSize()));
        for (int i = 0; i < cfg.layers(); i++) {
            g.output(presentKey(i), t, "batch_size", kv, "present_sequence_length", hd);
            g.output(presentValue(i), t, "batch_size", kv, "present_sequence_length", hd);
        }
    }

    /**
     * seqlens_k = sum(attention_mask, row) - 1 and total_sequence_length = attention_mask's width, both
     * int32 as GroupQueryAttention takes them, computed once for all layers.
     */
    private void attentionLengths() {
        String p = "/model/attn_mask_reformat/attn_mask_subgraph";
        String mask32 = g.op("Cast", p + "/Cast", in("attention_mask"), intAttr("to", INT32));
        String rowSum = g.op("ReduceSum", p + "/ReduceSum", in(mask32, g.initializer(Tensors.longVector(p + "/axes", 1))),
                intAttr("keepdims", 0));
        String one = g.initializer(Tensors.intScalar(p + "/one", 1));
        seqlensK = g.op("Sub", p + "/Sub", in(rowSum, one));
        String width = g.op("Shape", p + "/Shape", in("attention_mask"), intAttr("start", 1), intAttr("end", 2));
        totalLength = g.op("Cast", p + "/Shape/Cast", in(width), intAttr("to", INT32));
    }

    /** cos and sin of every position and pair, [positions, headDim/2], in the graph's float type. */
    private void rotaryCaches() {
        RotaryTables tables = RotaryTables.of(cfg);
        long[] dims = {tables.positions, tables.pairs};
        cosCache = g.initializer(init.tensor("cos_cache", dims, tables.cos));
        sinCache = g.initializer(init.tensor("sin_cache", dims, tables.sin));
    }

    /** Returns {the next layer's normalised input (or the final norm's output), the residual stream}. */
    private String[] layer(int i, String residual, String normed) {
        String p = "/model/layers." + i;
        String wp = "model.layers." + i + ".";

        String attn = attention(i, normed);
        String attnOut = init.project(p + "/attn/o_proj/MatMul", attn, wp + "attn.o_proj.weight",
                weights.weight(WeightPart.WO, i), null);
        String[] post = skipNorm(p + "/post_attention_layernorm", residual, attnOut,
                wp + "post_attention_layernorm.weight", weights.weight(WeightPart.FFN_NORM, i));

        String gate = init.project(p + "/mlp/gate_proj/MatMul", post[0], wp + "mlp.gate_proj.weight",
                weights.weight(WeightPart.W1, i), null);
        String up = init.project(p + "/mlp/up_proj/MatMul", post[0], wp + "mlp.up_proj.weight",
                weights.weight(WeightPart.W3, i), null);
        String silu = g.op("Mul", p + "/mlp/act_fn/Mul", in(gate, g.op("Sigmoid", p + "/mlp/act_fn/Sigmoid", in(gate))));
        String mlpOut = init.project(p + "/mlp/down_proj/MatMul", g.op("Mul", p + "/mlp/Mul", in(silu, up)),
                wp + "mlp.down_proj.weight", weights.weight(WeightPart.W2, i), null);

        boolean last = i == cfg.layers() - 1;
        return last
                ? skipNorm("/model/layers." + cfg.layers() + "/final_norm_layernorm", post[1], mlpOut, "model.norm.weight",
                        weights.weight(WeightPart.FINAL_NORM, 0))
                : skipNorm("/model/layers." + (i + 1) + "/input_layernorm", post[1], mlpOut,
                        "model.layers." + (i + 1) + ".input_layernorm.weight", weights.weight(WeightPart.ATTN_NORM, i + 1));
    }

    /** The packed q|k|v projection and GroupQueryAttention; returns the attention's output [batch, seq, dim]. */
    private String attention(int i, String x) {
        String p = "/model/layers." + i + "/attn";
        String wp = "model.layers." + i + ".attn.";
        int qkvWidth = cfg.dim() + 2 * cfg.kvDim();
        String qkv = init.project(p + "/qkv_proj/MatMul", x, wp + "qkv_proj.weight",
                packed(i, WeightPart.WQ, WeightPart.WK, WeightPart.WV), null);
        if (cfg.qkvBias()) {
            qkv = g.op("Add", p + "/qkv_proj/Add", in(qkv, init.weight(wp + "qkv_proj.bias", new long[] {qkvWidth},
                    packedBias(i))));
        }
        String[] qkvInputs;
        if (rotaryInside) {
            qkvInputs = in(qkv, "", "");
        } else {
            String[] parts = g.ops("Split", p + "/qkv_proj/Split", 3,
                    in(qkv, g.initializer(Tensors.longVector(p + "/qkv_proj/split", cfg.dim(), cfg.kvDim(), cfg.kvDim()))),
                    intAttr("axis", -1));
            qkvInputs = in(rotary(p + "/q_rotary", parts[0], cfg.heads()), rotary(p + "/k_rotary", parts[1], cfg.kvHeads()),
                    parts[2]);
        }
        String name = p + "/GroupQueryAttention";
        String out = name + "_output_0";
        String[] inputs = in(qkvInputs[0], qkvInputs[1], qkvInputs[2], pastKey(i), pastValue(i), seqlensK, totalLength,
                rotaryInside ? cosCache : "", rotaryInside ? sinCache : "");
        g.node(MICROSOFT, "GroupQueryAttention", name, trimEmptyTail(inputs), in(out, presentKey(i), presentValue(i)),
                intAttr("num_heads", cfg.heads()), intAttr("kv_num_heads", cfg.kvHeads()),
                floatAttr("scale", (float) (1.0 / Math.sqrt(cfg.headDim()))),
                intAttr("do_rotary", rotaryInside ? 1 : 0), intAttr("rotary_interleaved", 1));
        return out;
    }

    /** com.microsoft::RotaryEmbedding of x [batch, seq, heads*headDim] at position_ids, pairs (2j, 2j+1). */
    private String rotary(String p, String x, int heads) {
        String out = p + "/RotaryEmbedding_output_0";
        g.node(MICROSOFT, "RotaryEmbedding", p + "/RotaryEmbedding", in(x, "position_ids", cosCache, sinCache),
                in(out), intAttr("interleaved", 1), intAttr("num_heads", heads));
        return out;
    }

    /**
     * SkipSimplifiedLayerNormalization: residual + branch, normalised with {@code gamma}. Returns
     * {output 0 (the normalised sum), output 3 (the sum)}; mean and inverse std (outputs 1 and 2) stay unnamed.
     */
    private String[] skipNorm(String p, String residual, String branch, String gammaName, WeightRows gamma) {
        String name = p + "/SkipLayerNorm";
        String[] outputs = in(name + "_output_0", "", "", name + "_output_3");
        g.node(MICROSOFT, "SkipSimplifiedLayerNormalization", name,
                in(residual, branch, init.weight(gammaName, new long[] {gamma.cols()}, gamma)), outputs,
                floatAttr("epsilon", cfg.normEps()));
        return in(outputs[0], outputs[3]);
    }

    private static String[] trimEmptyTail(String[] inputs) {
        int n = inputs.length;
        while (n > 0 && inputs[n - 1].isEmpty()) {
            n--;
        }
        return java.util.Arrays.copyOf(inputs, n);
    }

    /** Row blocks [out][in] one after another: the weights of one MatMul that computes them side by side. */
    private WeightRows packed(int layer, WeightPart... parts) {
        WeightRows[] rows = new WeightRows[parts.length];
        for (int j = 0; j < parts.length; j++) {
            rows[j] = weights.weight(parts[j], layer);
        }
        return WeightRows.stacked(rows);
    }

    /** The q, k and v biases side by side, one vector. */
    private WeightRows packedBias(int layer) {
        float[] q = weights.weight(WeightPart.BQ, layer).readAll();
        float[] k = weights.weight(WeightPart.BK, layer).readAll();
        float[] v = weights.weight(WeightPart.BV, layer).readAll();
        float[] all = java.util.Arrays.copyOf(q, q.length + k.length + v.length);
        System.arraycopy(k, 0, all, q.length, k.length);
        System.arraycopy(v, 0, all, q.length + k.length, v.length);
        return WeightRows.of(all);
    }
}
