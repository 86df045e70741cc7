package org.attnskip.serve;

import com.fasterxml.jackson.databind.ObjectMapper;
import org.attnskip.CliRun;
import org.attnskip.export.Safetensors;
import org.attnskip.export.SafetensorsWriter;
import org.attnskip.export.TinyHfCheckpoint;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * A tiny random Llama checkpoint as Hugging Face writes it, with a word-level tokenizer that knows
 * Llama 3's chat tokens and a tokenizer_config.json holding Llama 3 Instruct's chat template,
 * exported with {@code attnskip export --hf}.
 */
final class ChatModelFixture {
    static final List<String> VOCAB = vocabulary();
    static final int DIM = 16;
    static final int FFN = 32;
    static final int LAYERS = 2;
    static final int HEADS = 2;
    static final int KV_HEADS = 1;
    private static final int SPECIAL = 6; // <unk> and the five chat tokens come first

    private ChatModelFixture() {
    }

    private static List<String> vocabulary() {
        List<String> v = new ArrayList<>(List.of("<unk>", "<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>",
                "<|end_header_id|>", "<|eot_id|>", "system", "user", "assistant"));
        v.addAll(List.of("Hello", "world", "the", "cat", "dog", "sun", "moon", "red", "blue", "green", "big", "small",
                "tree", "house", "bird", "fish", "happy", "sad", "run", "jump", "sing", "play", "book", "ball", "car",
                "boat", "rain", "snow", "star", "sky", "river", "hill", "apple", "bread", "milk", "tea", "cake", "door",
                "window"));
        return List.copyOf(v);
    }

    static int id(String token) {
        int id = VOCAB.indexOf(token);
        if (id < 0) {
            throw new IllegalArgumentException(token + " is not in the fixture's vocabulary");
        }
        return id;
    }

    /** Writes the checkpoint under {@code tmp/hf} and exports it to {@code tmp/chat-model}, which it returns. */
    static Path export(Path tmp) throws Exception {
        Path hf = tmp.resolve("hf");
        Files.createDirectories(hf);
        Map<String, Object> config = TinyHfCheckpoint.llamaConfig();
        config.put("hidden_size", DIM);
        config.put("intermediate_size", FFN);
        config.put("num_hidden_layers", LAYERS);
        config.put("num_attention_heads", HEADS);
        config.put("num_key_value_heads", KV_HEADS);
        config.put("vocab_size", VOCAB.size());
        config.put("max_position_embeddings", 128);
        TinyHfCheckpoint.writeConfig(hf, config);
        writeWeights(hf);
        writeTokenizer(hf);
        new ObjectMapper().writeValue(hf.resolve("tokenizer_config.json").toFile(), Map.of(
                "chat_template", ChatTemplateTest.LLAMA3,
                "bos_token", "<|begin_of_text|>",
                "eos_token", "<|eot_id|>"));
        Path out = tmp.resolve("chat-model");
        int code = CliRun.of("export", "--hf", hf.toString(), "-o", out.toString()).code();
        if (code != 0) {
            throw new IllegalStateException("export --hf exited " + code);
        }
        return out;
    }

    private static void writeWeights(Path hf) {
        Random r = new Random(5);
        int vocab = VOCAB.size();
        int kvDim = KV_HEADS * DIM / HEADS;
        SafetensorsWriter w = new SafetensorsWriter().metadata("format", "pt");
        add(w, r, "model.embed_tokens.weight", 1.0, vocab, DIM);
        for (int i = 0; i < LAYERS; i++) {
            String p = "model.layers." + i + ".";
            add(w, r, p + "self_attn.q_proj.weight", 0.5, DIM, DIM);
            add(w, r, p + "self_attn.k_proj.weight", 0.5, kvDim, DIM);
            add(w, r, p + "self_attn.v_proj.weight", 0.5, kvDim, DIM);
            add(w, r, p + "self_attn.o_proj.weight", 0.25, DIM, DIM);
            add(w, r, p + "mlp.gate_proj.weight", 0.25, FFN, DIM);
            add(w, r, p + "mlp.up_proj.weight", 0.25, FFN, DIM);
            add(w, r, p + "mlp.down_proj.weight", 0.18, DIM, FFN);
            add(w, r, p + "input_layernorm.weight", 0.0, DIM);
            add(w, r, p + "post_attention_layernorm.weight", 0.0, DIM);
        }
        add(w, r, "model.norm.weight", 0.0, DIM);
        // The special tokens' output rows are zero, so greedy replies run to max_tokens instead of ending
        // at a random end-of-turn: long replies make crossed answers visible.
        float[] head = new float[vocab * DIM];
        for (int i = SPECIAL * DIM; i < head.length; i++) {
            head[i] = (float) r.nextGaussian();
        }
        w.add("lm_head.weight", Safetensors.DType.F32, head, vocab, DIM);
        w.write(hf.resolve("model.safetensors"));
    }

    /** Gaussian values of the given spread around 0, or around 1 for a norm's weights (std 0). */
    private static void add(SafetensorsWriter w, Random r, String name, double std, long... shape) {
        int n = 1;
        for (long d : shape) {
            n *= (int) d;
        }
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = std == 0 ? 1f + 0.1f * (float) r.nextGaussian() : (float) (std * r.nextGaussian());
        }
        w.add(name, Safetensors.DType.F32, v, shape);
    }

    /** A word-level tokenizer.json: whitespace-split words, the chat tokens as special added tokens. */
    private static void writeTokenizer(Path hf) throws Exception {
        Map<String, Integer> vocab = new LinkedHashMap<>();
        for (int i = 0; i < VOCAB.size(); i++) {
            vocab.put(VOCAB.get(i), i);
        }
        List<Map<String, Object>> added = new ArrayList<>();
        for (int i = 1; i < SPECIAL; i++) {
            Map<String, Object> t = new LinkedHashMap<>();
            t.put("id", i);
            t.put("content", VOCAB.get(i));
            t.put("single_word", false);
            t.put("lstrip", false);
            t.put("rstrip", false);
            t.put("normalized", false);
            t.put("special", true);
            added.add(t);
        }
        Map<String, Object> model = new LinkedHashMap<>();
        model.put("type", "WordLevel");
        model.put("vocab", vocab);
        model.put("unk_token", "<unk>");
        Map<String, Object> tokenizer = new LinkedHashMap<>();
        tokenizer.put("version", "1.0");
        tokenizer.put("added_tokens", added);
        tokenizer.put("pre_tokenizer", Map.of("type", "Whitespace"));
        tokenizer.put("model", model);
        new ObjectMapper().writeValue(hf.resolve("tokenizer.json").toFile(), tokenizer);
    }
}
