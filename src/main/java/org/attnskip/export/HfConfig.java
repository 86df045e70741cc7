package org.attnskip.export;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.attnskip.onnx.BadInputException;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/**
 * Turns a Hugging Face {@code config.json} of a Llama-family model into a {@link LlamaConfig},
 * refusing every setting our single forward pass (RMSNorm, SwiGLU, full causal attention with
 * interleaved rotary) would silently get wrong.
 */
public final class HfConfig {
    /** The architectures we read, and the config.json model_type each one uses. */
    public static final List<String> SUPPORTED = List.of("LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM");
    private static final Map<String, String> ARCHITECTURE_OF_MODEL_TYPE =
            Map.of("llama", "LlamaForCausalLM", "mistral", "MistralForCausalLM", "qwen2", "Qwen2ForCausalLM");
    private static final ObjectMapper JSON = new ObjectMapper();

    /** The parsed config plus the architecture it was read for. */
    public record Parsed(String architecture, LlamaConfig config) {
    }

    private final Path file;
    private final JsonNode root;

    private HfConfig(Path file, JsonNode root) {
        this.file = file;
        this.root = root;
    }

    /** Reads {@code dir/config.json}. */
    public static Parsed read(Path dir) {
        Path file = dir.resolve("config.json");
        JsonNode root;
        try {
            root = JSON.readTree(Files.readString(file));
        } catch (NoSuchFileException e) {
            throw new BadInputException("no config.json in " + dir + " (expected a Hugging Face checkpoint folder)");
        } catch (IOException e) {
            throw new BadInputException("cannot read " + file + ": " + e.getMessage(), e);
        }
        if (root == null || !root.isObject()) {
            throw new BadInputException("config.json is not a JSON object: " + file);
        }
        return new HfConfig(file, root).parse();
    }

    private Parsed parse() {
        String architecture = architecture();
        String act = text("hidden_act", "silu");
        if (!act.equals("silu")) {
            throw bad("hidden_act " + act + " is not supported (only silu, the SwiGLU of Llama)");
        }
        if (bool("attention_bias", false) || bool("mlp_bias", false)) {
            throw bad("attention_bias/mlp_bias are not supported for " + architecture);
        }
        double partialRotary = number("partial_rotary_factor", 1.0);
        if (partialRotary != 1.0) {
            throw bad("partial_rotary_factor " + partialRotary + " is not supported (only full rotary)");
        }

        int dim = requiredInt("hidden_size");
        int heads = requiredInt("num_attention_heads");
        int kvHeads = root.hasNonNull("num_key_value_heads") ? requiredInt("num_key_value_heads") : heads;
        if (dim % heads != 0) {
            throw bad("hidden_size " + dim + " is not divisible by num_attention_heads " + heads);
        }
        if (root.hasNonNull("head_dim") && requiredInt("head_dim") != dim / heads) {
            throw bad("head_dim " + requiredInt("head_dim") + " differs from hidden_size/num_attention_heads = "
                    + dim / heads + ", which is not supported");
        }
        if (heads % kvHeads != 0) {
            throw bad("num_attention_heads " + heads + " is not divisible by num_key_value_heads " + kvHeads);
        }
        if ((dim / heads) % 2 != 0) {
            throw bad("head size " + dim / heads + " is odd; rotary embedding needs an even head size");
        }

        LlamaConfig config = new LlamaConfig(
                dim,
                requiredInt("intermediate_size"),
                requiredInt("num_hidden_layers"),
                heads,
                kvHeads,
                requiredInt("vocab_size"),
                contextLength(architecture),
                (float) number("rms_norm_eps", 1e-6),
                (float) ropeParameter("rope_theta", 10000.0),
                ropeScaling(),
                bool("tie_word_embeddings", false),
                architecture.equals("Qwen2ForCausalLM"),
                tokenId("bos_token_id"),
                tokenId("eos_token_id"));
        return new Parsed(architecture, config);
    }

    private String architecture() {
        JsonNode list = root.get("architectures");
        String architecture;
        if (list != null && list.isArray() && list.size() > 0) {
            architecture = list.get(0).asText();
        } else if (list != null && list.isTextual()) {
            architecture = list.asText();
        } else {
            String modelType = text("model_type", null);
            if (modelType == null) {
                throw bad("config.json names no architecture (neither architectures nor model_type)");
            }
            architecture = ARCHITECTURE_OF_MODEL_TYPE.getOrDefault(modelType, "model_type " + modelType);
        }
        if (!SUPPORTED.contains(architecture)) {
            throw new BadInputException("unsupported architecture " + architecture + " in config.json (supported: "
                    + String.join(", ", SUPPORTED) + ")");
        }
        return architecture;
    }

    /**
     * Our forward pass uses full causal attention. Sliding-window attention (Mistral v0.1, Qwen2
     * with use_sliding_window) only differs once the context is longer than the window, so we cap
     * the context length at the window: every context the exported model accepts is then exact.
     */
    private int contextLength(String architecture) {
        int maxPositions = requiredInt("max_position_embeddings");
        boolean windowed = switch (architecture) {
            case "MistralForCausalLM" -> root.hasNonNull("sliding_window");
            case "Qwen2ForCausalLM" -> bool("use_sliding_window", false) && root.hasNonNull("sliding_window");
            default -> false;
        };
        return windowed ? Math.min(maxPositions, requiredInt("sliding_window")) : maxPositions;
    }

    /** Older configs put rope settings at the top level, newer ones under rope_parameters. */
    private double ropeParameter(String key, double fallback) {
        JsonNode params = root.get("rope_parameters");
        if (params != null && params.hasNonNull(key)) {
            return params.get(key).asDouble();
        }
        return number(key, fallback);
    }

    private LlamaConfig.RopeScaling ropeScaling() {
        JsonNode scaling = root.get("rope_scaling");
        if (scaling == null || scaling.isNull()) {
            scaling = root.get("rope_parameters");
        }
        if (scaling == null || scaling.isNull()) {
            return null;
        }
        if (!scaling.isObject()) {
            throw bad("rope_scaling must be an object or null");
        }
        JsonNode typeNode = scaling.hasNonNull("rope_type") ? scaling.get("rope_type") : scaling.get("type");
        String type = typeNode == null || typeNode.isNull() ? "default" : typeNode.asText();
        if (type.equals("default")) {
            return null;
        }
        if (!type.equals("llama3")) {
            throw bad("rope scaling type " + type + " is not supported (only llama3)");
        }
        return new LlamaConfig.RopeScaling(
                (float) requiredNumber(scaling, "factor"),
                (float) requiredNumber(scaling, "low_freq_factor"),
                (float) requiredNumber(scaling, "high_freq_factor"),
                (int) requiredNumber(scaling, "original_max_position_embeddings"));
    }

    /** A token id, or the first of a list of ids (Llama 3 lists several eos ids); -1 when absent. */
    private int tokenId(String key) {
        JsonNode node = root.get(key);
        if (node != null && node.isArray()) {
            node = node.size() > 0 ? node.get(0) : null;
        }
        if (node == null || node.isNull()) {
            return -1;
        }
        if (!node.canConvertToInt()) {
            throw bad(key + " must be an integer or a list of integers");
        }
        return node.asInt();
    }

    private double requiredNumber(JsonNode object, String key) {
        JsonNode node = object.get(key);
        if (node == null || !node.isNumber()) {
            throw bad("rope_scaling needs a number " + key);
        }
        return node.asDouble();
    }

    private int requiredInt(String key) {
        JsonNode node = root.get(key);
        if (node == null || node.isNull()) {
            throw bad("missing " + key);
        }
        if (!node.canConvertToInt() || !node.isIntegralNumber() || node.asInt() <= 0) {
            throw bad(key + " must be a positive integer, not " + node);
        }
        return node.asInt();
    }

    private double number(String key, double fallback) {
        JsonNode node = root.get(key);
        if (node == null || node.isNull()) {
            return fallback;
        }
        if (!node.isNumber()) {
            throw bad(key + " must be a number, not " + node);
        }
        return node.asDouble();
    }

    private boolean bool(String key, boolean fallback) {
        JsonNode node = root.get(key);
        return node == null || node.isNull() ? fallback : node.asBoolean();
    }

    private String text(String key, String fallback) {
        JsonNode node = root.get(key);
        return node == null || node.isNull() ? fallback : node.asText();
    }

    private BadInputException bad(String reason) {
        return new BadInputException(reason + " in " + file);
    }
}
