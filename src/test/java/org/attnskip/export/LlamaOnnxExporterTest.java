package org.attnskip.export;

import ai.onnx.proto.OnnxMl.ModelProto;
import ai.onnx.proto.OnnxMl.NodeProto;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.attnskip.Fixtures;
import org.attnskip.onnx.OnnxModelIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Random;
import java.util.Set;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class LlamaOnnxExporterTest {
    private static final int TOKENS = 64;

    @TempDir
    Path tmp;

    @Test
    void stories260KMatchesTheReferenceInPrefillAndCachedDecode() throws IOException {
        LlamaWeights w = Llama2cCheckpoint.read(Fixtures.model("stories260K/stories260K.bin"));
        JsonNode ids = new ObjectMapper().readTree(
                Fixtures.model("stories260K/golden/once_upon_a_time.ids.json").toFile()).get("all_ids");
        int[] tokens = new int[TOKENS];
        for (int i = 0; i < TOKENS; i++) {
            tokens[i] = ids.get(i).asInt();
        }
        double delta = assertMatchesReference(w, tokens, ExportDtype.FLOAT, 1e-4);
        System.out.printf("stories260K, 64 tokens: max |logit delta| ORT vs ReferenceLlama %.2e%n", delta);
    }

    @Test
    void groupedQueryAttentionMatchesTheReference() {
        LlamaWeights w = TestLlamaWeights.random(TestLlamaWeights.config(48, 80, 3, 6, 2, 97, 128, true, false), 1);
        assertMatchesReference(w, randomTokens(w), ExportDtype.FLOAT, 1e-4);
    }

    @Test
    void qkvBiasSeparateClassifierAndFullHeadsMatchTheReference() {
        LlamaWeights w = TestLlamaWeights.random(TestLlamaWeights.config(32, 64, 2, 4, 4, 61, 96, false, true), 2);
        assertMatchesReference(w, randomTokens(w), ExportDtype.FLOAT, 1e-4);
    }

    @Test
    void llama3RopeScalingMatchesTheReference() {
        LlamaConfig c = TestLlamaWeights.config(64, 96, 2, 4, 2, 50, 128, true, true);
        c = new LlamaConfig(c.dim(), c.hiddenDim(), c.layers(), c.heads(), c.kvHeads(), c.vocabSize(), c.seqLen(),
                c.normEps(), 500000f, new LlamaConfig.RopeScaling(8f, 1f, 4f, 32), c.sharedClassifier(), c.qkvBias(),
                c.bosId(), c.eosId());
        LlamaWeights w = TestLlamaWeights.random(c, 8);
        assertMatchesReference(w, randomTokens(w), ExportDtype.FLOAT, 1e-4);
    }

    @Test
    void fp16ExportStaysCloseToFp32() {
        LlamaWeights w = TestLlamaWeights.random(TestLlamaWeights.config(48, 80, 3, 6, 2, 97, 128, true, false), 3);
        double delta = assertMatchesReference(w, randomTokens(w), ExportDtype.FLOAT16, 0.05);
        System.out.printf("fp16 export, random weights: max |logit delta| vs fp32 reference %.4f%n", delta);
    }

    private static int[] randomTokens(LlamaWeights w) {
        return new Random(7).ints(TOKENS, 0, w.config.vocabSize()).toArray();
    }

    @Test
    void graphUsesOnlyStandardOpsAndNamesItsParts() {
        LlamaWeights w = TestLlamaWeights.random(TestLlamaWeights.config(32, 64, 2, 4, 2, 61, 96, true, true), 4);
        ModelProto m = LlamaOnnxExporter.export(w, ExportDtype.FLOAT);
        assertEquals(8, m.getIrVersion());
        assertEquals(1, m.getOpsetImportCount());
        assertEquals("", m.getOpsetImport(0).getDomain());
        assertEquals(17, m.getOpsetImport(0).getVersion());
        Set<String> names = m.getGraph().getNodeList().stream().map(NodeProto::getName).collect(Collectors.toSet());
        for (int i = 0; i < 2; i++) {
            for (String n : new String[] {"self_attn/q_proj/MatMul", "self_attn/k_proj/MatMul", "self_attn/v_proj/MatMul",
                    "self_attn/o_proj/MatMul", "self_attn_residual/Add", "mlp/gate_proj/MatMul", "mlp/up_proj/MatMul",
                    "mlp/down_proj/MatMul", "mlp_residual/Add", "input_layernorm/ReduceMean",
                    "post_attention_layernorm/ReduceMean"}) {
                assertTrue(names.contains("/model/layers." + i + "/" + n), "missing node " + n + " in layer " + i);
            }
        }
        assertTrue(names.contains("/model/norm/Mul_1"));
        assertTrue(names.contains("/lm_head/MatMul"));
        assertTrue(m.getGraph().getNodeList().stream().allMatch(n -> n.getDomain().isEmpty()));
        Set<String> inputs = m.getGraph().getInputList().stream().map(v -> v.getName()).collect(Collectors.toSet());
        assertEquals(Set.of("input_ids", "attention_mask", "position_ids", "logits_to_keep", "past_key_values.0.key", "past_key_values.0.value",
                "past_key_values.1.key", "past_key_values.1.value"), inputs);
        assertEquals("logits", m.getGraph().getOutput(0).getName());
        assertEquals("present.1.value", m.getGraph().getOutput(4).getName());
    }

    /** Returns the largest |delta| seen, over a 64-token prefill and the same tokens decoded one by one. */
    private double assertMatchesReference(LlamaWeights w, int[] tokens, ExportDtype dtype, double tolerance) {
        Path file = tmp.resolve("model-" + dtype.cliName() + ".onnx");
        OnnxModelIO.save(LlamaOnnxExporter.export(w, dtype), null, file, false);
        return ReferenceMatch.assertLogitsMatch(file, w, tokens, tolerance);
    }
}
