package org.attnskip.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.attnskip.CliRun;
import org.attnskip.Fixtures;
import org.attnskip.Golden;
import org.attnskip.export.HfCheckpoint;
import org.attnskip.export.LlamaWeights;
import org.attnskip.export.ModelDirectory;
import org.attnskip.export.ReferenceMatch;
import org.attnskip.export.Safetensors;
import org.attnskip.export.SafetensorsWriter;
import org.attnskip.export.TinyHfCheckpoint;
import org.attnskip.reference.ReferenceLlama;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * export --hf through the CLI. One small Llama folder with Llama 2's tokenizer.json (from the ortgenai
 * fixture) is generated from greedily: the ids equal the reference implementation's. Then each kind of
 * checkpoint the reader supports is exported and its logits compared with the reference's.
 */
class ExportHfCliTest {
    private static final int DIM = TinyHfCheckpoint.DIM;
    private static final int FFN = 32;
    private static final int LAYERS = TinyHfCheckpoint.LAYERS;
    private static final int HEADS = TinyHfCheckpoint.HEADS;
    private static final int KV_HEADS = TinyHfCheckpoint.KV_HEADS;
    private static final int VOCAB = 32000;

    @TempDir
    Path tmp;

    @Test
    void exportedHfModelGeneratesWhatTheReferenceGenerates() throws IOException {
        Path hf = writeHfFolder(tmp.resolve("tiny-llama"));
        Path dir = tmp.resolve("exported");
        CliRun export = CliRun.of("export", "--hf", hf.toString(), "-o", dir.toString());
        assertEquals(0, export.code(), export.err());
        ModelDirectory md = ModelDirectory.read(dir);
        assertEquals("huggingface", md.manifest().tokenizer().kind());
        assertEquals("tokenizer.json", md.tokenizerFile().getFileName().toString());

        CliRun generate = CliRun.of("generate", dir.toString(), "--prompt", "Hello world", "-n", "12", "-t", "0",
                "--device", "cpu", "--json");
        assertEquals(0, generate.code(), generate.err());
        JsonNode json = new ObjectMapper().readTree(generate.out());
        int[] prompt = Golden.ints(json.get("prompt_ids"));
        assertArrayEquals(new int[] {1, 15043, 3186}, prompt);
        int[] expected = new ReferenceLlama(HfCheckpoint.read(hf)).generateGreedy(prompt, 12);
        assertArrayEquals(Arrays.copyOfRange(expected, prompt.length, expected.length), Golden.ints(json.get("generated_ids")));
    }

    /** The checkpoint variants the reader supports, each written as HF would write it. */
    enum Variant {
        SINGLE_FP32_LLAMA, SHARDED_WITH_INDEX, BF16, MISTRAL, QWEN2_QKV_BIASES, LLAMA3_ROPE_SCALING;

        Path write(Path to) throws IOException {
            Map<String, Object> config = TinyHfCheckpoint.llamaConfig();
            Map<String, TinyHfCheckpoint.HfTensor> tensors = TinyHfCheckpoint.tensors(this == QWEN2_QKV_BIASES, true, ordinal());
            switch (this) {
                case MISTRAL -> {
                    config.put("architectures", List.of("MistralForCausalLM"));
                    config.put("model_type", "mistral");
                    config.put("sliding_window", 32);
                }
                case QWEN2_QKV_BIASES -> {
                    config.put("architectures", List.of("Qwen2ForCausalLM"));
                    config.put("model_type", "qwen2");
                    config.put("use_sliding_window", false);
                }
                case LLAMA3_ROPE_SCALING -> config.put("rope_scaling", Map.of("rope_type", "llama3", "factor", 8.0,
                        "low_freq_factor", 1.0, "high_freq_factor", 4.0, "original_max_position_embeddings", 64));
                default -> {
                }
            }
            TinyHfCheckpoint.writeConfig(to, config);
            switch (this) {
                case SHARDED_WITH_INDEX -> TinyHfCheckpoint.writeSharded(to, tensors);
                case BF16 -> TinyHfCheckpoint.writeSingle(to, tensors, Safetensors.DType.BF16);
                default -> TinyHfCheckpoint.writeSingle(to, tensors, Safetensors.DType.F32);
            }
            TinyHfCheckpoint.writeTokenizer(to);
            return to;
        }
    }

    @ParameterizedTest(name = "{0}")
    @EnumSource(Variant.class)
    void exportedLogitsMatchTheReference(Variant variant) throws IOException {
        Path hf = variant.write(tmp.resolve("hf"));
        Path dir = tmp.resolve("exported");
        CliRun export = CliRun.of("export", "--hf", hf.toString(), "-o", dir.toString());
        assertEquals(0, export.code(), export.err());

        LlamaWeights weights = HfCheckpoint.read(hf);
        // the variant really reached the exporter with the feature it is named for
        assertEquals(variant == Variant.QWEN2_QKV_BIASES, weights.config.qkvBias());
        assertEquals(variant == Variant.LLAMA3_ROPE_SCALING, weights.config.ropeScaling() != null);
        assertEquals(variant == Variant.MISTRAL ? 32 : 64, weights.config.seqLen());

        int[] tokens = new Random(11).ints(24, 0, TinyHfCheckpoint.VOCAB).toArray();
        double delta = ReferenceMatch.assertLogitsMatch(ModelDirectory.read(dir).modelFile(), weights, tokens, 1e-4);
        System.out.printf("export --hf %s, %d tokens: max |logit delta| ORT vs ReferenceLlama %.2e%n",
                variant, tokens.length, delta);
    }

    private static Path writeHfFolder(Path to) throws IOException {
        Files.createDirectories(to);
        // The tiny shape, but with Llama 2's real tokenizer, whose 32000 ids need the matching vocabulary.
        Map<String, Object> c = TinyHfCheckpoint.llamaConfig();
        c.put("intermediate_size", FFN);
        c.put("vocab_size", VOCAB);
        TinyHfCheckpoint.writeConfig(to, c);

        Random r = new Random(3);
        int kvDim = KV_HEADS * DIM / HEADS;
        SafetensorsWriter w = new SafetensorsWriter().metadata("format", "pt");
        add(w, r, "model.embed_tokens.weight", 1.0, VOCAB, DIM);
        for (int i = 0; i < LAYERS; i++) {
            String p = "model.layers." + i + ".";
            add(w, r, p + "self_attn.q_proj.weight", 0.25, DIM, DIM);
            add(w, r, p + "self_attn.k_proj.weight", 0.25, kvDim, DIM);
            add(w, r, p + "self_attn.v_proj.weight", 0.25, kvDim, DIM);
            add(w, r, p + "self_attn.o_proj.weight", 0.25, DIM, DIM);
            add(w, r, p + "mlp.gate_proj.weight", 0.25, FFN, DIM);
            add(w, r, p + "mlp.up_proj.weight", 0.25, FFN, DIM);
            add(w, r, p + "mlp.down_proj.weight", 0.18, DIM, FFN);
            norm(w, r, p + "input_layernorm.weight");
            norm(w, r, p + "post_attention_layernorm.weight");
        }
        norm(w, r, "model.norm.weight");
        add(w, r, "lm_head.weight", 0.25, VOCAB, DIM);
        w.write(to.resolve("model.safetensors"));
        Files.copy(Fixtures.model("ortgenai-llama-fp16/tokenizer.json"), to.resolve("tokenizer.json"));
        return to;
    }

    private static void add(SafetensorsWriter w, Random r, String name, double std, int rows, int cols) {
        float[] v = new float[rows * cols];
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) (std * r.nextGaussian());
        }
        w.add(name, Safetensors.DType.F32, v, rows, cols);
    }

    private static void norm(SafetensorsWriter w, Random r, String name) {
        float[] v = new float[DIM];
        for (int i = 0; i < DIM; i++) {
            v[i] = 1f + 0.1f * (float) r.nextGaussian();
        }
        w.add(name, Safetensors.DType.F32, v, DIM);
    }
}
