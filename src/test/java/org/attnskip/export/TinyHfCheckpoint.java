package org.attnskip.export;

import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * Writes tiny random Hugging Face checkpoint folders (config.json, single or sharded safetensors,
 * a word-level tokenizer.json) in HF's own names and layout. Shared by the reader's tests and the
 * export CLI's tests, so that both exercise the same checkpoints.
 */
public final class TinyHfCheckpoint {
    public static final int DIM = 16;
    public static final int HEADS = 2;
    public static final int KV_HEADS = 1;
    public static final int HEAD_DIM = DIM / HEADS;
    public static final int KV_DIM = KV_HEADS * HEAD_DIM;
    public static final int FFN = 24;
    public static final int VOCAB = 11;
    public static final int LAYERS = 2;
    public static final double THETA = 10000;
    private static final ObjectMapper JSON = new ObjectMapper();

    private TinyHfCheckpoint() {
    }

    /** One tensor as HF stores it: row-major values and their shape. */
    public record HfTensor(float[] values, long[] shape) {
    }

    /** The tensors of a tiny model in Hugging Face's layout and names, unit-Gaussian values. */
    public static Map<String, HfTensor> tensors(boolean qkvBias, boolean withLmHead, long seed) {
        Random r = new Random(seed);
        Map<String, HfTensor> t = new LinkedHashMap<>();
        put(t, r, "model.embed_tokens.weight", VOCAB, DIM);
        for (int i = 0; i < LAYERS; i++) {
            String p = "model.layers." + i + ".";
            put(t, r, p + "input_layernorm.weight", DIM);
            put(t, r, p + "self_attn.q_proj.weight", DIM, DIM);
            put(t, r, p + "self_attn.k_proj.weight", KV_DIM, DIM);
            put(t, r, p + "self_attn.v_proj.weight", KV_DIM, DIM);
            if (qkvBias) {
                put(t, r, p + "self_attn.q_proj.bias", DIM);
                put(t, r, p + "self_attn.k_proj.bias", KV_DIM);
                put(t, r, p + "self_attn.v_proj.bias", KV_DIM);
            }
            put(t, r, p + "self_attn.o_proj.weight", DIM, DIM);
            put(t, r, p + "post_attention_layernorm.weight", DIM);
            put(t, r, p + "mlp.gate_proj.weight", FFN, DIM);
            put(t, r, p + "mlp.up_proj.weight", FFN, DIM);
            put(t, r, p + "mlp.down_proj.weight", DIM, FFN);
        }
        put(t, r, "model.norm.weight", DIM);
        if (withLmHead) {
            put(t, r, "lm_head.weight", VOCAB, DIM);
        }
        return t;
    }

    private static void put(Map<String, HfTensor> t, Random r, String name, long... shape) {
        long n = 1;
        for (long d : shape) {
            n *= d;
        }
        float[] v = new float[(int) n];
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) r.nextGaussian();
        }
        t.put(name, new HfTensor(v, shape));
    }

    /** A LlamaForCausalLM config.json of this shape, as a mutable map so tests can vary it. */
    public static Map<String, Object> llamaConfig() {
        Map<String, Object> c = new LinkedHashMap<>();
        c.put("architectures", List.of("LlamaForCausalLM"));
        c.put("model_type", "llama");
        c.put("hidden_size", DIM);
        c.put("intermediate_size", FFN);
        c.put("num_hidden_layers", LAYERS);
        c.put("num_attention_heads", HEADS);
        c.put("num_key_value_heads", KV_HEADS);
        c.put("vocab_size", VOCAB);
        c.put("max_position_embeddings", 64);
        c.put("rms_norm_eps", 1e-5);
        c.put("rope_theta", THETA);
        c.put("hidden_act", "silu");
        c.put("tie_word_embeddings", false);
        c.put("bos_token_id", 1);
        c.put("eos_token_id", 2);
        c.put("torch_dtype", "float32");
        return c;
    }

    public static Path writeConfig(Path to, Map<String, Object> config) throws IOException {
        Files.createDirectories(to);
        JSON.writeValue(to.resolve("config.json").toFile(), config);
        return to;
    }

    public static void writeSingle(Path to, Map<String, HfTensor> tensors, Safetensors.DType dtype) {
        SafetensorsWriter w = new SafetensorsWriter().metadata("format", "pt");
        tensors.forEach((name, t) -> w.add(name, dtype, t.values(), t.shape()));
        w.write(to.resolve("model.safetensors"));
    }

    /** Two shards, the split falling in the middle of layer 0, plus the index that maps them. */
    public static void writeSharded(Path to, Map<String, HfTensor> tensors) throws IOException {
        List<String> names = new ArrayList<>(tensors.keySet());
        int split = 4;
        String[] files = {"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"};
        Map<String, String> weightMap = new LinkedHashMap<>();
        for (int shard = 0; shard < 2; shard++) {
            SafetensorsWriter w = new SafetensorsWriter();
            for (String name : shard == 0 ? names.subList(0, split) : names.subList(split, names.size())) {
                w.add(name, Safetensors.DType.F32, tensors.get(name).values(), tensors.get(name).shape());
                weightMap.put(name, files[shard]);
            }
            w.write(to.resolve(files[shard]));
        }
        JSON.writeValue(to.resolve("model.safetensors.index.json").toFile(),
                Map.of("metadata", Map.of("total_size", 0), "weight_map", weightMap));
    }

    /** {@code shards} shards of about equal tensor counts in {@code dtype}, named and indexed as HF names them. */
    public static void writeSharded(Path to, Map<String, HfTensor> tensors, Safetensors.DType dtype, int shards)
            throws IOException {
        List<String> names = new ArrayList<>(tensors.keySet());
        Map<String, String> weightMap = new LinkedHashMap<>();
        for (int shard = 0; shard < shards; shard++) {
            String file = String.format("model-%05d-of-%05d.safetensors", shard + 1, shards);
            SafetensorsWriter w = new SafetensorsWriter();
            for (String name : names.subList(shard * names.size() / shards, (shard + 1) * names.size() / shards)) {
                w.add(name, dtype, tensors.get(name).values(), tensors.get(name).shape());
                weightMap.put(name, file);
            }
            w.write(to.resolve(file));
        }
        JSON.writeValue(to.resolve("model.safetensors.index.json").toFile(),
                Map.of("metadata", Map.of("total_size", 0), "weight_map", weightMap));
    }

    /**
     * A word-level tokenizer.json with exactly VOCAB ids (unk, BOS, EOS, then one word each), so
     * that export's check "the tokenizer fits the model" passes for this tiny vocabulary.
     */
    public static void writeTokenizer(Path to) throws IOException {
        Map<String, Integer> vocab = new LinkedHashMap<>();
        vocab.put("<unk>", 0);
        vocab.put("<s>", 1);
        vocab.put("</s>", 2);
        for (int id = 3; id < VOCAB; id++) {
            vocab.put("w" + id, id);
        }
        Map<String, Object> model = new LinkedHashMap<>();
        model.put("type", "WordLevel");
        model.put("vocab", vocab);
        model.put("unk_token", "<unk>");
        Map<String, Object> tokenizer = new LinkedHashMap<>();
        tokenizer.put("version", "1.0");
        tokenizer.put("added_tokens", List.of());
        tokenizer.put("pre_tokenizer", Map.of("type", "Whitespace"));
        tokenizer.put("model", model);
        JSON.writeValue(to.resolve("tokenizer.json").toFile(), tokenizer);
    }
}
