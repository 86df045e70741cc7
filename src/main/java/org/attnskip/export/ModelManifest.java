package org.attnskip.export;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonProperty;

/**
 * The contents of {@code attnskip.json}, which sits next to {@code model.onnx} in a model directory
 * and says what the graph is, which tokenizer file goes with it, and where it came from.
 *
 * @param format    {@link #FORMAT}
 * @param model     the graph's file name inside the directory
 * @param dtype     fp32 or fp16
 * @param source    where the weights came from, e.g. {@code llama2c:stories260K.bin}
 * @param graph     {@code fused} or {@code static} for those flavours; absent for the unfused graph (so the
 *                  manifests of unfused exports read as they always did)
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record ModelManifest(
        @JsonProperty("format") String format,
        @JsonProperty("model") String model,
        @JsonProperty("architecture") Architecture architecture,
        @JsonProperty("tokenizer") TokenizerRef tokenizer,
        @JsonProperty("dtype") String dtype,
        @JsonProperty("source") String source,
        @JsonProperty("graph") String graph) {

    public static final String FORMAT = "attnskip-model/1";

    /** The decoder's shape; names follow Hugging Face's config.json where it has one. */
    @JsonInclude(JsonInclude.Include.NON_NULL)
    public record Architecture(
            @JsonProperty("layers") int layers,
            @JsonProperty("hidden") int hidden,
            @JsonProperty("heads") int heads,
            @JsonProperty("kv_heads") int kvHeads,
            @JsonProperty("head_dim") int headDim,
            @JsonProperty("ffn") int ffn,
            @JsonProperty("vocab") int vocab,
            @JsonProperty("max_positions") int maxPositions,
            @JsonProperty("rope_theta") float ropeTheta,
            @JsonProperty("rope_scaling") RopeScaling ropeScaling,
            @JsonProperty("norm_eps") float normEps,
            @JsonProperty("qkv_bias") boolean qkvBias,
            @JsonProperty("shared_classifier") boolean sharedClassifier,
            @JsonProperty("bos_id") int bosId,
            @JsonProperty("eos_id") int eosId) {
    }

    /** Llama 3 rope scaling, with Hugging Face's key names. */
    public record RopeScaling(
            @JsonProperty("rope_type") String ropeType,
            @JsonProperty("factor") float factor,
            @JsonProperty("low_freq_factor") float lowFreqFactor,
            @JsonProperty("high_freq_factor") float highFreqFactor,
            @JsonProperty("original_max_position_embeddings") int originalMaxPositionEmbeddings) {
    }

    /**
     * @param kind {@link #LLAMA2C} (llama2.c's tokenizer.bin) or {@link #HUGGINGFACE} (tokenizer.json)
     * @param file the file name inside the model directory
     */
    public record TokenizerRef(@JsonProperty("kind") String kind, @JsonProperty("file") String file) {
        public static final String LLAMA2C = "llama2c";
        public static final String HUGGINGFACE = "huggingface";

        /** tokenizer.json (or any .json) is Hugging Face's format; anything else is llama2.c's binary format. */
        public static TokenizerRef forFile(String fileName) {
            return new TokenizerRef(fileName.endsWith(".json") ? HUGGINGFACE : LLAMA2C, fileName);
        }
    }

    public static ModelManifest of(LlamaConfig c, ExportDtype dtype, TokenizerRef tokenizer, String source) {
        return of(c, dtype, tokenizer, source, GraphFlavour.UNFUSED);
    }

    public static ModelManifest of(LlamaConfig c, ExportDtype dtype, TokenizerRef tokenizer, String source,
                                   GraphFlavour graph) {
        RopeScaling scaling = c.ropeScaling() == null ? null : new RopeScaling("llama3", c.ropeScaling().factor(),
                c.ropeScaling().lowFreqFactor(), c.ropeScaling().highFreqFactor(),
                c.ropeScaling().originalMaxPositionEmbeddings());
        Architecture a = new Architecture(c.layers(), c.dim(), c.heads(), c.kvHeads(), c.headDim(), c.hiddenDim(),
                c.vocabSize(), c.seqLen(), c.ropeTheta(), scaling, c.normEps(), c.qkvBias(), c.sharedClassifier(),
                c.bosId(), c.eosId());
        return new ModelManifest(FORMAT, ModelDirectory.MODEL_FILE, a, tokenizer, dtype.cliName(), source,
                graph == GraphFlavour.UNFUSED ? null : graph.cliName());
    }

    /** The architecture as a LlamaConfig, for code that rebuilds or checks the model. */
    public LlamaConfig config() {
        Architecture a = architecture;
        LlamaConfig.RopeScaling scaling = a.ropeScaling() == null ? null : new LlamaConfig.RopeScaling(
                a.ropeScaling().factor(), a.ropeScaling().lowFreqFactor(), a.ropeScaling().highFreqFactor(),
                a.ropeScaling().originalMaxPositionEmbeddings());
        return new LlamaConfig(a.hidden(), a.ffn(), a.layers(), a.heads(), a.kvHeads(), a.vocab(), a.maxPositions(),
                a.normEps(), a.ropeTheta(), scaling, a.sharedClassifier(), a.qkvBias(), a.bosId(), a.eosId());
    }
}
