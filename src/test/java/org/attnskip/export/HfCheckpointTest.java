package org.attnskip.export;

import org.attnskip.export.TinyHfCheckpoint.HfTensor;
import org.attnskip.onnx.BadInputException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.attnskip.export.TinyHfCheckpoint.DIM;
import static org.attnskip.export.TinyHfCheckpoint.FFN;
import static org.attnskip.export.TinyHfCheckpoint.HEADS;
import static org.attnskip.export.TinyHfCheckpoint.HEAD_DIM;
import static org.attnskip.export.TinyHfCheckpoint.KV_DIM;
import static org.attnskip.export.TinyHfCheckpoint.KV_HEADS;
import static org.attnskip.export.TinyHfCheckpoint.LAYERS;
import static org.attnskip.export.TinyHfCheckpoint.THETA;
import static org.attnskip.export.TinyHfCheckpoint.VOCAB;
import static org.attnskip.export.TinyHfCheckpoint.llamaConfig;
import static org.attnskip.export.TinyHfCheckpoint.tensors;
import static org.attnskip.export.TinyHfCheckpoint.writeConfig;
import static org.attnskip.export.TinyHfCheckpoint.writeSharded;
import static org.attnskip.export.TinyHfCheckpoint.writeSingle;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Writes tiny random Hugging Face checkpoints ({@link TinyHfCheckpoint}), reads them back, and checks where every tensor
 * lands. The rotary permutation is proven by computing attention scores twice, each with its
 * own small RoPE written here: HF's rotate_half on the original weights, and llama2.c's
 * interleaved pairs on the weights we read.
 */
class HfCheckpointTest {
    @TempDir
    Path dir;

    // ---------------------------------------------------------------- the two RoPE conventions

    private static double[] inverseFrequencies(LlamaConfig.RopeScaling scaling) {
        double[] inv = new double[HEAD_DIM / 2];
        for (int j = 0; j < inv.length; j++) {
            inv[j] = Math.pow(THETA, -2.0 * j / HEAD_DIM);
            if (scaling != null) {
                // Llama 3: long wavelengths slowed by factor, short ones kept, a smooth blend between
                double wavelength = 2 * Math.PI / inv[j];
                double lowFreqWavelength = scaling.originalMaxPositionEmbeddings() / scaling.lowFreqFactor();
                double highFreqWavelength = scaling.originalMaxPositionEmbeddings() / scaling.highFreqFactor();
                if (wavelength > lowFreqWavelength) {
                    inv[j] = inv[j] / scaling.factor();
                } else if (wavelength >= highFreqWavelength) {
                    double smooth = (scaling.originalMaxPositionEmbeddings() / wavelength - scaling.lowFreqFactor())
                            / (scaling.highFreqFactor() - scaling.lowFreqFactor());
                    inv[j] = (1 - smooth) * inv[j] / scaling.factor() + smooth * inv[j];
                }
            }
        }
        return inv;
    }

    /** HF: out = x * cos + rotate_half(x) * sin, where element j pairs with j + d/2. */
    private static double[] ropeHalves(double[] v, int heads, int pos, double[] inv) {
        double[] out = v.clone();
        int half = HEAD_DIM / 2;
        for (int h = 0; h < heads; h++) {
            for (int j = 0; j < half; j++) {
                int a = h * HEAD_DIM + j;
                int b = a + half;
                double c = Math.cos(pos * inv[j]);
                double s = Math.sin(pos * inv[j]);
                out[a] = v[a] * c - v[b] * s;
                out[b] = v[b] * c + v[a] * s;
            }
        }
        return out;
    }

    /** llama2.c: element 2j pairs with 2j + 1, rotated by frequency j. */
    private static double[] ropeInterleaved(double[] v, int heads, int pos, double[] inv) {
        double[] out = v.clone();
        for (int h = 0; h < heads; h++) {
            for (int j = 0; j < HEAD_DIM / 2; j++) {
                int a = h * HEAD_DIM + 2 * j;
                double c = Math.cos(pos * inv[j]);
                double s = Math.sin(pos * inv[j]);
                out[a] = v[a] * c - v[a + 1] * s;
                out[a + 1] = v[a + 1] * c + v[a] * s;
            }
        }
        return out;
    }

    private static double[] project(float[] w, float[] bias, double[] x, int rows) {
        double[] y = new double[rows];
        for (int r = 0; r < rows; r++) {
            double s = bias == null ? 0 : bias[r];
            for (int c = 0; c < x.length; c++) {
                s += w[r * x.length + c] * x[c];
            }
            y[r] = s;
        }
        return y;
    }

    /** Scores of every query head against its (grouped) key head: [heads]. */
    private static double[] scores(double[] q, double[] k) {
        double[] s = new double[HEADS];
        for (int h = 0; h < HEADS; h++) {
            int g = h / (HEADS / KV_HEADS);
            for (int i = 0; i < HEAD_DIM; i++) {
                s[h] += q[h * HEAD_DIM + i] * k[g * HEAD_DIM + i];
            }
        }
        return s;
    }

    /**
     * For random inputs at query position 13 and key position 4, q·k after HF RoPE on the
     * original weights must equal q·k after interleaved RoPE on the weights we read. Returns the
     * largest difference seen when the un-permuted weights go through interleaved RoPE instead,
     * which must be large for the check to mean anything.
     */
    private static double assertScoresMatch(Map<String, HfTensor> hf, LlamaWeights w, double[] inv) {
        Random r = new Random(7);
        double unpermutedGap = 0;
        for (int layer = 0; layer < LAYERS; layer++) {
            String p = "model.layers." + layer + ".self_attn.";
            float[] hfBq = hf.containsKey(p + "q_proj.bias") ? hf.get(p + "q_proj.bias").values() : null;
            float[] hfBk = hf.containsKey(p + "k_proj.bias") ? hf.get(p + "k_proj.bias").values() : null;
            LlamaWeights.Layer ours = w.layers[layer];
            for (int trial = 0; trial < 3; trial++) {
                double[] x = r.doubles(DIM, -1, 1).toArray();
                double[] y = r.doubles(DIM, -1, 1).toArray();
                double[] hfQ = project(hf.get(p + "q_proj.weight").values(), hfBq, x, DIM);
                double[] hfK = project(hf.get(p + "k_proj.weight").values(), hfBk, y, KV_DIM);
                double[] expected = scores(ropeHalves(hfQ, HEADS, 13, inv), ropeHalves(hfK, KV_HEADS, 4, inv));

                double[] q = project(ours.wq(), ours.bq(), x, DIM);
                double[] k = project(ours.wk(), ours.bk(), y, KV_DIM);
                double[] actual = scores(ropeInterleaved(q, HEADS, 13, inv), ropeInterleaved(k, KV_HEADS, 4, inv));
                assertArrayEquals(expected, actual, 1e-9 * (1 + maxAbs(expected)), "layer " + layer);

                double[] wrong = scores(ropeInterleaved(hfQ, HEADS, 13, inv), ropeInterleaved(hfK, KV_HEADS, 4, inv));
                for (int h = 0; h < HEADS; h++) {
                    unpermutedGap = Math.max(unpermutedGap, Math.abs(wrong[h] - expected[h]));
                }
            }
        }
        return unpermutedGap;
    }

    private static double maxAbs(double[] v) {
        double m = 0;
        for (double x : v) {
            m = Math.max(m, Math.abs(x));
        }
        return m;
    }

    /** Every tensor that is not q/k lands unchanged in its LlamaWeights field. */
    private static void assertFieldsMatch(Map<String, HfTensor> hf, LlamaWeights w) {
        assertArrayEquals(hf.get("model.embed_tokens.weight").values(), w.tokenEmbedding);
        assertArrayEquals(hf.get("model.norm.weight").values(), w.finalNorm);
        for (int i = 0; i < LAYERS; i++) {
            String p = "model.layers." + i + ".";
            LlamaWeights.Layer l = w.layers[i];
            assertArrayEquals(hf.get(p + "input_layernorm.weight").values(), l.attnNorm());
            assertArrayEquals(hf.get(p + "post_attention_layernorm.weight").values(), l.ffnNorm());
            assertArrayEquals(hf.get(p + "self_attn.v_proj.weight").values(), l.wv());
            assertArrayEquals(hf.get(p + "self_attn.o_proj.weight").values(), l.wo());
            assertArrayEquals(hf.get(p + "mlp.gate_proj.weight").values(), l.w1());
            assertArrayEquals(hf.get(p + "mlp.down_proj.weight").values(), l.w2());
            assertArrayEquals(hf.get(p + "mlp.up_proj.weight").values(), l.w3());
            // q/k: row 2j of each head is HF row j, row 2j+1 is HF row j + d/2
            assertRowsInterleaved(hf.get(p + "self_attn.q_proj.weight").values(), l.wq(), HEADS, DIM);
            assertRowsInterleaved(hf.get(p + "self_attn.k_proj.weight").values(), l.wk(), KV_HEADS, DIM);
        }
    }

    private static void assertRowsInterleaved(float[] hf, float[] ours, int heads, int cols) {
        for (int h = 0; h < heads; h++) {
            for (int j = 0; j < HEAD_DIM / 2; j++) {
                for (int c = 0; c < cols; c++) {
                    int base = h * HEAD_DIM;
                    assertEquals(hf[(base + j) * cols + c], ours[(base + 2 * j) * cols + c]);
                    assertEquals(hf[(base + j + HEAD_DIM / 2) * cols + c], ours[(base + 2 * j + 1) * cols + c]);
                }
            }
        }
    }

    // ---------------------------------------------------------------- the checkpoints

    @Test
    void singleFileF32Llama() throws IOException {
        Map<String, HfTensor> hf = tensors(false, true, 1);
        Path model = writeConfig(dir.resolve("llama"), llamaConfig());
        writeSingle(model, hf, Safetensors.DType.F32);

        LlamaWeights w = HfCheckpoint.read(model);
        LlamaConfig c = w.config;
        assertEquals(new LlamaConfig(DIM, FFN, LAYERS, HEADS, KV_HEADS, VOCAB, 64, 1e-5f, 10000f, null,
                false, false, 1, 2), c);
        assertFieldsMatch(hf, w);
        assertArrayEquals(hf.get("lm_head.weight").values(), w.classifier);
        assertNull(w.layers[0].bq());
        double gap = assertScoresMatch(hf, w, inverseFrequencies(null));
        assertTrue(gap > 0.1, "un-permuted weights should give different scores, gap " + gap);
    }

    @Test
    void shardedCheckpointWithIndex() throws IOException {
        Map<String, HfTensor> hf = tensors(false, true, 2);
        Path model = writeConfig(dir.resolve("sharded"), llamaConfig());
        writeSharded(model, hf);

        LlamaWeights w = HfCheckpoint.read(model);
        assertFieldsMatch(hf, w);
        assertArrayEquals(hf.get("lm_head.weight").values(), w.classifier);
        assertScoresMatch(hf, w, inverseFrequencies(null));
    }

    @Test
    void bf16ValuesAreTheTruncatedFloats() throws IOException {
        Map<String, HfTensor> original = tensors(false, true, 3);
        Map<String, HfTensor> truncated = new LinkedHashMap<>();
        original.forEach((name, t) -> {
            float[] v = t.values().clone();
            for (int i = 0; i < v.length; i++) {
                v[i] = Float.intBitsToFloat(Float.floatToRawIntBits(v[i]) & 0xffff0000);
            }
            truncated.put(name, new HfTensor(v, t.shape()));
        });
        Path model = writeConfig(dir.resolve("bf16"), llamaConfig());
        writeSingle(model, truncated, Safetensors.DType.BF16);

        LlamaWeights w = HfCheckpoint.read(model);
        assertFieldsMatch(truncated, w);
        assertScoresMatch(truncated, w, inverseFrequencies(null));
        // and the precision really was reduced: the originals differ from what we read
        float[] emb = original.get("model.embed_tokens.weight").values();
        int differing = 0;
        for (int i = 0; i < emb.length; i++) {
            differing += emb[i] != w.tokenEmbedding[i] ? 1 : 0;
        }
        assertTrue(differing > emb.length * 9 / 10, differing + " of " + emb.length + " differ");
    }

    @Test
    void tiedEmbeddingsShareTheArray() throws IOException {
        Map<String, HfTensor> hf = tensors(false, false, 4);
        Map<String, Object> config = llamaConfig();
        config.put("tie_word_embeddings", true);
        config.put("eos_token_id", List.of(9, 2)); // Llama 3 style list: the first one counts
        Path model = writeConfig(dir.resolve("tied"), config);
        writeSingle(model, hf, Safetensors.DType.F16);

        LlamaWeights w = HfCheckpoint.read(model);
        assertTrue(w.config.sharedClassifier());
        assertSame(w.tokenEmbedding, w.classifier);
        assertEquals(9, w.config.eosId());
        // fp16 round trip changes the values, so compare with a tolerance fitting fp16's 11-bit mantissa
        float[] emb = hf.get("model.embed_tokens.weight").values();
        for (int i = 0; i < emb.length; i++) {
            assertEquals(emb[i], w.tokenEmbedding[i], Math.abs(emb[i]) * 1e-3 + 1e-4);
        }
    }

    @Test
    void qwen2BiasesArePermutedLikeTheirRows() throws IOException {
        Map<String, HfTensor> hf = tensors(true, true, 5);
        Map<String, Object> config = llamaConfig();
        config.put("architectures", List.of("Qwen2ForCausalLM"));
        config.put("model_type", "qwen2");
        config.put("use_sliding_window", false);
        config.put("sliding_window", 32); // ignored: use_sliding_window is false
        config.put("rope_theta", THETA);
        Path model = writeConfig(dir.resolve("qwen2"), config);
        writeSingle(model, hf, Safetensors.DType.F32);

        LlamaWeights w = HfCheckpoint.read(model);
        assertTrue(w.config.qkvBias());
        assertEquals(64, w.config.seqLen());
        assertFieldsMatch(hf, w);
        for (int i = 0; i < LAYERS; i++) {
            String p = "model.layers." + i + ".self_attn.";
            assertArrayEquals(hf.get(p + "v_proj.bias").values(), w.layers[i].bv());
            assertRowsInterleaved(hf.get(p + "q_proj.bias").values(), w.layers[i].bq(), HEADS, 1);
            assertRowsInterleaved(hf.get(p + "k_proj.bias").values(), w.layers[i].bk(), KV_HEADS, 1);
        }
        double gap = assertScoresMatch(hf, w, inverseFrequencies(null));
        assertTrue(gap > 0.1, "gap " + gap);
    }

    @Test
    void llama3RopeScaling() throws IOException {
        Map<String, HfTensor> hf = tensors(false, true, 6);
        Map<String, Object> config = llamaConfig();
        // with head size 8 and theta 1e4 the wavelengths are 6.3, 63, 628 and 6283: one kept,
        // one blended, two slowed down
        config.put("rope_scaling", Map.of("rope_type", "llama3", "factor", 8.0, "low_freq_factor", 1.0,
                "high_freq_factor", 4.0, "original_max_position_embeddings", 64));
        Path model = writeConfig(dir.resolve("llama3"), config);
        writeSingle(model, hf, Safetensors.DType.F32);

        LlamaWeights w = HfCheckpoint.read(model);
        LlamaConfig.RopeScaling scaling = w.config.ropeScaling();
        assertEquals(new LlamaConfig.RopeScaling(8f, 1f, 4f, 64), scaling);
        double[] inv = inverseFrequencies(scaling);
        assertEquals(1.0, inv[0], 1e-12);
        assertEquals(1e-2 / 8, inv[2], 1e-12);
        assertScoresMatch(hf, w, inv);
    }

    // ---------------------------------------------------------------- config-only cases

    @Test
    void configDefaultsAndMistralSlidingWindow() throws IOException {
        Map<String, Object> config = llamaConfig();
        config.remove("num_key_value_heads");
        config.remove("rope_theta");
        config.remove("bos_token_id");
        config.put("eos_token_id", null);
        LlamaConfig c = HfConfig.read(writeConfig(dir.resolve("defaults"), config)).config();
        assertEquals(HEADS, c.kvHeads());
        assertEquals(10000f, c.ropeTheta());
        assertEquals(-1, c.bosId());
        assertEquals(-1, c.eosId());

        Map<String, Object> mistral = llamaConfig();
        mistral.put("architectures", List.of("MistralForCausalLM"));
        mistral.put("sliding_window", 32);
        HfConfig.Parsed parsed = HfConfig.read(writeConfig(dir.resolve("mistral"), mistral));
        assertEquals("MistralForCausalLM", parsed.architecture());
        assertEquals(32, parsed.config().seqLen());
        mistral.put("sliding_window", null);
        assertEquals(64, HfConfig.read(writeConfig(dir.resolve("mistral2"), mistral)).config().seqLen());
    }

    // ---------------------------------------------------------------- errors

    @Test
    void unsupportedArchitecture() throws IOException {
        Map<String, Object> config = llamaConfig();
        config.put("architectures", List.of("GPT2LMHeadModel"));
        Path model = writeConfig(dir.resolve("gpt2"), config);
        BadInputException e = assertThrows(BadInputException.class, () -> HfCheckpoint.read(model));
        assertEquals("unsupported architecture GPT2LMHeadModel in config.json (supported: LlamaForCausalLM, "
                + "MistralForCausalLM, Qwen2ForCausalLM)", e.getMessage());
    }

    @Test
    void missingTensorIsNamed() throws IOException {
        Map<String, HfTensor> hf = tensors(false, true, 8);
        hf.remove("model.layers.1.mlp.up_proj.weight");
        Path model = writeConfig(dir.resolve("missing"), llamaConfig());
        writeSingle(model, hf, Safetensors.DType.F32);
        BadInputException e = assertThrows(BadInputException.class, () -> HfCheckpoint.read(model));
        assertTrue(e.getMessage().contains("tensor model.layers.1.mlp.up_proj.weight is missing"), e.getMessage());

        Map<String, HfTensor> noHead = tensors(false, false, 8);
        Path untied = writeConfig(dir.resolve("nohead"), llamaConfig());
        writeSingle(untied, noHead, Safetensors.DType.F32);
        e = assertThrows(BadInputException.class, () -> HfCheckpoint.read(untied));
        assertTrue(e.getMessage().contains("lm_head.weight"), e.getMessage());
    }

    @Test
    void wrongShapeIsNamed() throws IOException {
        Map<String, HfTensor> hf = tensors(false, true, 9);
        hf.put("model.norm.weight", new HfTensor(new float[DIM + 1], new long[]{DIM + 1}));
        Path model = writeConfig(dir.resolve("shape"), llamaConfig());
        writeSingle(model, hf, Safetensors.DType.F32);
        BadInputException e = assertThrows(BadInputException.class, () -> HfCheckpoint.read(model));
        assertTrue(e.getMessage().contains("model.norm.weight") && e.getMessage().contains("[17]"), e.getMessage());
    }

    @Test
    void truncatedShardIsNamed() throws IOException {
        Path model = writeConfig(dir.resolve("cut"), llamaConfig());
        writeSharded(model, tensors(false, true, 10));
        Path shard = model.resolve("model-00002-of-00002.safetensors");
        try (FileChannel ch = FileChannel.open(shard, StandardOpenOption.WRITE)) {
            ch.truncate(ch.size() / 2);
        }
        BadInputException e = assertThrows(BadInputException.class, () -> HfCheckpoint.read(model));
        assertTrue(e.getMessage().startsWith("truncated safetensors file"), e.getMessage());
        assertTrue(e.getMessage().contains(shard.toString()), e.getMessage());
    }

    @Test
    void unsupportedSettingsAreRefused() throws IOException {
        Map<String, Object> headDim = llamaConfig();
        headDim.put("head_dim", 4);
        assertRefused(headDim, "head_dim 4 differs");

        Map<String, Object> yarn = llamaConfig();
        yarn.put("rope_scaling", Map.of("rope_type", "yarn", "factor", 4.0));
        assertRefused(yarn, "rope scaling type yarn is not supported");

        Map<String, Object> gelu = llamaConfig();
        gelu.put("hidden_act", "gelu");
        assertRefused(gelu, "hidden_act gelu");

        Map<String, Object> missing = llamaConfig();
        missing.remove("intermediate_size");
        assertRefused(missing, "missing intermediate_size");

        Path empty = writeConfig(dir.resolve("noweights"), llamaConfig());
        BadInputException e = assertThrows(BadInputException.class, () -> HfCheckpoint.read(empty));
        assertTrue(e.getMessage().startsWith("no model.safetensors or model.safetensors.index.json"), e.getMessage());

        e = assertThrows(BadInputException.class, () -> HfCheckpoint.read(dir.resolve("nothing")));
        assertTrue(e.getMessage().startsWith("no config.json"), e.getMessage());
    }

    private void assertRefused(Map<String, Object> config, String messagePart) throws IOException {
        Path model = writeConfig(Files.createTempDirectory(dir, "bad"), config);
        BadInputException e = assertThrows(BadInputException.class, () -> HfCheckpoint.read(model));
        assertTrue(e.getMessage().contains(messagePart), e.getMessage());
        assertFalse(e.getMessage().contains("\n"));
        assertNotNull(e.getMessage());
    }
}
