package org.attnskip.runtime;

import ai.onnx.proto.OnnxMl.ModelProto;
import ai.onnx.proto.OnnxMl.NodeProto;
import org.attnskip.Fixtures;
import org.attnskip.export.ExportDtype;
import org.attnskip.export.LlamaOnnxExporter;
import org.attnskip.export.LlamaWeights;
import org.attnskip.export.TestLlamaWeights;
import org.attnskip.onnx.BadInputException;
import org.attnskip.onnx.Graph;
import org.attnskip.onnx.OnnxModelIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.List;

import static org.attnskip.Deltas.maxAbsDelta;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class DecoderSessionTest {
    private static final LlamaWeights WEIGHTS =
            TestLlamaWeights.random(TestLlamaWeights.config(32, 64, 3, 4, 2, 50, 64, true, false), 11);

    @TempDir
    Path tmp;

    private Path save(ModelProto m) {
        Path file = tmp.resolve("m" + System.nanoTime() + ".onnx");
        OnnxModelIO.save(m, null, file, false);
        return file;
    }

    @Test
    void leftPaddedBatchOfTwoGivesEachSequenceItsOwnLogits() {
        int[][] prompts = {{5, 9, 13, 2, 7, 30, 41, 8, 3, 17}, {22, 4, 48, 1, 6, 12}};
        int[][] continuations = {{11, 12, 13}, {40, 3, 9}};
        try (DecoderSession s = DecoderSession.open(save(LlamaOnnxExporter.export(WEIGHTS, ExportDtype.FLOAT)), Device.CPU)) {
            // Each sequence alone: its prefill logits and those of three more tokens.
            float[][][] alone = new float[2][][];
            for (int b = 0; b < 2; b++) {
                alone[b] = runAlone(s, prompts[b], continuations[b]);
            }
            LeftPadding.Inputs in = LeftPadding.prefill(prompts, 0);
            DecoderSession.Output out = s.run(in.inputIds(), in.attentionMask(), in.positionIds(), s.emptyCache(2));
            double worst = 0;
            for (int b = 0; b < 2; b++) {
                int pad = in.inputIds()[b].length - prompts[b].length;
                for (int i = 0; i < prompts[b].length; i++) {
                    worst = Math.max(worst, maxAbsDelta(alone[b][i], out.logits().at(b, pad + i)));
                }
            }
            KvCache cache = out.cache();
            long[][] mask = in.attentionMask();
            for (int step = 0; step < 3; step++) {
                LeftPadding.Inputs next = LeftPadding.step(new int[] {continuations[0][step], continuations[1][step]}, mask);
                DecoderSession.Output o = s.run(next.inputIds(), next.attentionMask(), next.positionIds(), cache);
                cache = o.cache();
                mask = next.attentionMask();
                for (int b = 0; b < 2; b++) {
                    worst = Math.max(worst, maxAbsDelta(alone[b][prompts[b].length + step], o.logits().at(b, 0)));
                }
            }
            cache.close();
            assertTrue(worst <= 1e-4, "batched vs alone: max |delta| " + worst);
        }
    }

    /** Logits of every position of prompt then continuation, run with batch 1. */
    static float[][] runAlone(DecoderSession s, int[] prompt, int[] continuation) {
        LeftPadding.Inputs in = LeftPadding.prefill(new int[][] {prompt}, 0);
        DecoderSession.Output out = s.run(in.inputIds(), in.attentionMask(), in.positionIds(), s.emptyCache(1));
        float[][] rows = new float[prompt.length + continuation.length][];
        for (int i = 0; i < prompt.length; i++) {
            rows[i] = out.logits().at(0, i);
        }
        KvCache cache = out.cache();
        long[][] mask = in.attentionMask();
        for (int j = 0; j < continuation.length; j++) {
            LeftPadding.Inputs next = LeftPadding.step(new int[] {continuation[j]}, mask);
            DecoderSession.Output o = s.run(next.inputIds(), next.attentionMask(), next.positionIds(), cache);
            cache = o.cache();
            mask = next.attentionMask();
            rows[prompt.length + j] = o.logits().at(0, 0);
        }
        cache.close();
        return rows;
    }

    @Test
    void feedsOnlyTheCacheInputsAGraphStillHas() {
        // What a drop rewrite leaves: layer 1's attention sub-block and its KV cache are gone.
        Graph g = new Graph(LlamaOnnxExporter.export(WEIGHTS, ExportDtype.FLOAT));
        NodeProto residual = g.nodes().stream()
                .filter(n -> n.getName().equals("/model/layers.1/self_attn_residual/Add")).findFirst().orElseThrow();
        g.replaceUses(residual.getOutput(0), residual.getInput(0));
        for (String kv : List.of("key", "value")) {
            g.removeOutput("present.1." + kv);
        }
        g.cleanup();
        for (String kv : List.of("key", "value")) {
            g.removeInput("past_key_values.1." + kv);
        }
        // As DropAttentionPass does, the metadata names the dropped layer: discovery sees only layers that attend.
        ModelProto dropped = g.toModel().toBuilder().addMetadataProps(ai.onnx.proto.OnnxMl.StringStringEntryProto.newBuilder()
                .setKey("attnskip.mode").setValue("drop")).addMetadataProps(ai.onnx.proto.OnnxMl.StringStringEntryProto
                .newBuilder().setKey("attnskip.layers").setValue("1")).build();
        try (DecoderSession s = DecoderSession.open(save(dropped), Device.CPU)) {
            assertEquals(List.of(0, 2), s.cachedLayers());
            assertEquals(2L * 2 * 2 * 8 * 4, s.kvBytesPerToken());
            LeftPadding.Inputs in = LeftPadding.prefill(new int[][] {{3, 4, 5}}, 0);
            DecoderSession.Output out = s.run(in.inputIds(), in.attentionMask(), in.positionIds(), s.emptyCache(1));
            KvCache cache = out.cache();
            long[][] mask = in.attentionMask();
            for (int t = 0; t < 3; t++) {
                LeftPadding.Inputs next = LeftPadding.step(new int[] {6 + t}, mask);
                DecoderSession.Output o = s.run(next.inputIds(), next.attentionMask(), next.positionIds(), cache);
                cache = o.cache();
                mask = next.attentionMask();
                for (float v : o.logits().at(0, 0)) {
                    assertTrue(Float.isFinite(v));
                }
            }
            assertEquals(6, cache.length());
            cache.close();
        }
    }

    /**
     * A third-party graph (onnxruntime-genai's builder: fused MultiHeadAttention, fp16 cache, external
     * data): the logits of one prefill equal those of the same tokens fed one at a time through the cache.
     */
    @Test
    void thirdPartyFp16GraphAgreesBetweenPrefillAndCachedDecode() {
        Path model = Fixtures.model("ortgenai-llama-fp16/model.onnx");
        int[] tokens = {1, 15043, 3186, 29892, 920, 526, 366, 29973};
        try (DecoderSession s = DecoderSession.open(model, Device.CPU)) {
            assertEquals(List.of(0, 1), s.cachedLayers());
            assertEquals(32000, s.vocabSize());
            float[][] alone = runAlone(s, new int[] {tokens[0]}, java.util.Arrays.copyOfRange(tokens, 1, tokens.length));
            LeftPadding.Inputs in = LeftPadding.prefill(new int[][] {tokens}, 0);
            DecoderSession.Output out = s.run(in.inputIds(), in.attentionMask(), in.positionIds(), s.emptyCache(1));
            out.cache().close();
            double worst = 0;
            for (int i = 0; i < tokens.length; i++) {
                worst = Math.max(worst, maxAbsDelta(alone[i], out.logits().at(0, i)));
            }
            System.out.printf("ortgenai-llama-fp16: prefill vs cached decode, max |logit delta| %.2e%n", worst);
            double spread = maxAbsDelta(out.logits().at(0, 0), out.logits().at(0, tokens.length - 1));
            System.out.printf("ortgenai-llama-fp16: logits differ between first and last position by up to %.3f%n", spread);
            assertTrue(spread > 0.01, "the comparison is not trivial: positions have different logits");
            assertTrue(worst <= 1e-2, "prefill vs decode " + worst);
        }
    }

    /**
     * ORT's fused Attention with one stacked [2, B, H, P, D] cache per layer and int32 ids and mask
     * (onnxruntime's transformers tools): prefill and token-by-token decode through the cache agree.
     */
    @Test
    void stackedCacheGraphAgreesBetweenPrefillAndCachedDecode() {
        Path model = Fixtures.model("ortgenai-gpt2-fp32/past.onnx");
        int[] tokens = {262, 290, 286, 11, 13, 464, 257, 318};
        try (DecoderSession s = DecoderSession.open(model, Device.CPU)) {
            assertEquals(List.of(0, 1, 2, 3, 4), s.cachedLayers());
            assertEquals(1280, s.kvBytesPerToken()); // 5 layers x 2 x 4 heads x 8 dims x 4 bytes, as inspect says
            assertFalse(s.acceptsBatches(), "KvBatch lays out unstacked rows only");
            float[][] alone = runAlone(s, new int[] {tokens[0]}, java.util.Arrays.copyOfRange(tokens, 1, tokens.length));
            LeftPadding.Inputs in = LeftPadding.prefill(new int[][] {tokens}, 0);
            DecoderSession.Output out = s.run(in.inputIds(), in.attentionMask(), in.positionIds(), s.emptyCache(1));
            assertEquals(tokens.length, out.cache().length());
            out.cache().close();
            double worst = 0;
            for (int i = 0; i < tokens.length; i++) {
                worst = Math.max(worst, maxAbsDelta(alone[i], out.logits().at(0, i)));
            }
            System.out.printf("ortgenai-gpt2-fp32 (stacked cache): prefill vs cached decode, max |logit delta| %.2e%n", worst);
            assertTrue(maxAbsDelta(out.logits().at(0, 0), out.logits().at(0, tokens.length - 1)) > 0.01,
                    "positions have different logits");
            assertTrue(worst <= 1e-4, "prefill vs decode " + worst);
            BadInputException e = org.junit.jupiter.api.Assertions.assertThrows(BadInputException.class,
                    () -> s.run(new long[][] {{15496}}, new long[][] {{1}}, new long[][] {{0}}, s.emptyCache(1)));
            assertTrue(e.getMessage().contains("outside the model's vocabulary of 1000"), e.getMessage());
        }
    }

    @Test
    void aGraphWithoutAnLmHeadIsRefusedWithTheReason() {
        Path model = Fixtures.model("torch-gpt2-past/gpt2_past.onnx"); // ends in last_state [B, S, 4]
        BadInputException e = org.junit.jupiter.api.Assertions.assertThrows(BadInputException.class,
                () -> DecoderSession.open(model, Device.CPU).close());
        assertTrue(e.getMessage().contains("'last_state'), not in logits"), e.getMessage());
    }

    /**
     * The runtime takes its names from layout discovery, not from optimum's convention: the same
     * graph with every input and output renamed gives the same logits, prefill and cached decode.
     */
    @Test
    void runsAGraphWhoseInputsAndOutputsHaveOtherNames() {
        ModelProto original = LlamaOnnxExporter.export(WEIGHTS, ExportDtype.FLOAT);
        java.util.Map<String, String> names = new java.util.HashMap<>();
        names.put("input_ids", "tokens");
        names.put("attention_mask", "keep_mask");
        names.put("position_ids", "token_position");
        names.put("logits", "next_token_scores");
        for (int layer = 0; layer < 3; layer++) {
            for (String kv : List.of("key", "value")) {
                names.put("past_key_values." + layer + "." + kv, "cache_in_" + kv + "_" + layer);
                names.put("present." + layer + "." + kv, "cache_out_" + kv + "_" + layer);
            }
        }
        ModelProto.Builder renamed = original.toBuilder();
        var graph = renamed.getGraphBuilder();
        graph.getInputBuilderList().forEach(v -> v.setName(names.getOrDefault(v.getName(), v.getName())));
        graph.getOutputBuilderList().forEach(v -> v.setName(names.getOrDefault(v.getName(), v.getName())));
        for (NodeProto.Builder n : graph.getNodeBuilderList()) {
            for (int k = 0; k < n.getInputCount(); k++) {
                n.setInput(k, names.getOrDefault(n.getInput(k), n.getInput(k)));
            }
            for (int k = 0; k < n.getOutputCount(); k++) {
                n.setOutput(k, names.getOrDefault(n.getOutput(k), n.getOutput(k)));
            }
        }
        int[] prompt = {5, 9, 13, 2};
        int[] continuation = {11, 12};
        try (DecoderSession a = DecoderSession.open(save(original), Device.CPU);
             DecoderSession b = DecoderSession.open(save(renamed.build()), Device.CPU)) {
            assertEquals("tokens", b.io().inputIds());
            assertEquals("next_token_scores", b.io().logits());
            assertEquals(6, b.io().caches().size());
            assertEquals(List.of(0, 1, 2), b.cachedLayers());
            float[][] expected = runAlone(a, prompt, continuation);
            float[][] actual = runAlone(b, prompt, continuation);
            for (int t = 0; t < expected.length; t++) {
                assertEquals(0.0, maxAbsDelta(expected[t], actual[t]), 0.0, "position " + t);
            }
        }
    }
}
