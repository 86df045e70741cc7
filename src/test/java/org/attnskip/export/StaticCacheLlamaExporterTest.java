package org.attnskip.export;

import ai.onnx.proto.OnnxMl.ModelProto;
import ai.onnx.proto.OnnxMl.NodeProto;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.attnskip.Fixtures;
import org.attnskip.layout.AttentionKind;
import org.attnskip.layout.CacheKind;
import org.attnskip.layout.DecoderLayout;
import org.attnskip.layout.LayerLayout;
import org.attnskip.layout.LayoutDiscovery;
import org.attnskip.layout.StaticCache;
import org.attnskip.onnx.Graph;
import org.attnskip.onnx.OnnxModelIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import java.util.Set;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The opset-24 static-cache spelling (RMSNormalization, ONNX RotaryEmbedding and Attention,
 * TensorScatter into fixed buffers) computes the reference's logits, in one prefill and decoded
 * token by token through the fixed buffers, and discovery reads it as a static cache.
 */
class StaticCacheLlamaExporterTest {
    private static final int TOKENS = 48;

    @TempDir
    Path tmp;

    @Test
    void stories260KMatchesTheReferenceInPrefillAndStaticCacheDecode() throws IOException {
        LlamaWeights w = Llama2cCheckpoint.read(Fixtures.model("stories260K/stories260K.bin"));
        double delta = assertMatchesReference(w, goldenTokens(), ExportDtype.FLOAT, 1e-4);
        System.out.printf("static-cache graph, stories260K, %d tokens: max |logit delta| vs ReferenceLlama %.2e%n",
                TOKENS, delta);
    }

    @Test
    void fp16StaticCacheGraphStaysCloseToTheFp32Reference() throws IOException {
        LlamaWeights w = Llama2cCheckpoint.read(Fixtures.model("stories260K/stories260K.bin"));
        double delta = assertMatchesReference(w, goldenTokens(), ExportDtype.FLOAT16, 0.1);
        System.out.printf("static-cache graph fp16, stories260K: max |logit delta| vs fp32 reference %.4f%n", delta);
    }

    @Test
    void groupedQueryHeadsBiasAndSeparateClassifierMatchTheReference() {
        LlamaWeights w = TestLlamaWeights.random(TestLlamaWeights.config(48, 80, 3, 6, 2, 97, 128, false, true), 11);
        assertMatchesReference(w, new Random(5).ints(TOKENS, 0, 97).toArray(), ExportDtype.FLOAT, 1e-4);
    }

    @Test
    void discoveryFindsTheStaticCacheOfEveryLayer() {
        LlamaWeights w = TestLlamaWeights.random(TestLlamaWeights.config(32, 64, 3, 4, 2, 61, 96, true, false), 12);
        ModelProto m = StaticCacheLlamaExporter.export(w, ExportDtype.FLOAT);
        Set<String> ops = m.getGraph().getNodeList().stream().map(NodeProto::getOpType).collect(Collectors.toSet());
        assertTrue(ops.containsAll(List.of("RMSNormalization", "RotaryEmbedding", "Attention", "TensorScatter", "Transpose")));
        assertTrue(m.getGraph().getNodeList().stream().allMatch(n -> n.getDomain().isEmpty()));

        DecoderLayout layout = LayoutDiscovery.discover(new Graph(m));
        assertEquals("onnx-attention", layout.dialect());
        assertEquals(3, layout.numLayers());
        assertEquals(4, layout.numHeads());
        assertEquals(2, layout.numKvHeads());
        assertEquals(8, layout.headDim());
        assertEquals(61, layout.vocabSize());
        assertEquals("position_ids", layout.positionIds());
        for (LayerLayout l : layout.layers()) {
            assertEquals(AttentionKind.ONNX_ATTENTION, l.attention().kind());
            assertEquals(List.of(StaticCacheLlamaExporter.keyCache(l.index()), StaticCacheLlamaExporter.valueCache(l.index())),
                    l.kv().inputs());
            assertEquals(List.of(StaticCacheLlamaExporter.presentKeyCache(l.index()),
                    StaticCacheLlamaExporter.presentValueCache(l.index())), l.kv().outputs());
            assertTrue(StaticCache.writes(l));
            assertEquals(CacheKind.STATIC, l.cacheKind());
            assertTrue(l.cacheUpdatedInPlace());
            assertEquals("RMSNormalization", l.attention().norm().getOpType());
        }
        assertEquals(new StaticCache("write_indices", "nonpad_kv_seqlen", 1), StaticCache.of(layout).orElseThrow());
        // K and V of 2 heads x 8 dims, fp32, in each of 3 layers
        assertEquals(3 * 2 * 16 * 4, layout.kvBytesPerToken());
    }

    private double assertMatchesReference(LlamaWeights w, int[] tokens, ExportDtype dtype, double tolerance) {
        Path file = tmp.resolve("static-" + dtype.cliName() + ".onnx");
        OnnxModelIO.save(StaticCacheLlamaExporter.export(w, dtype), null, file, false);
        return ReferenceMatch.assertLogitsMatch(file, w, tokens, tolerance);
    }

    private static int[] goldenTokens() throws IOException {
        JsonNode ids = new ObjectMapper().readTree(
                Fixtures.model("stories260K/golden/once_upon_a_time.ids.json").toFile()).get("all_ids");
        int[] tokens = new int[TOKENS];
        for (int i = 0; i < TOKENS; i++) {
            tokens[i] = ids.get(i).asInt();
        }
        return tokens;
    }
}
