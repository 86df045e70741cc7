package org.attnskip.rewrite;

import ai.onnx.proto.OnnxMl.NodeProto;
import org.attnskip.Fixtures;
import org.attnskip.export.ExportDtype;
import org.attnskip.export.Llama2cCheckpoint;
import org.attnskip.export.LlamaWeights;
import org.attnskip.export.StaticCacheLlamaExporter;
import org.attnskip.layout.DecoderLayout;
import org.attnskip.layout.LayoutDiscovery;
import org.attnskip.onnx.Graph;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * drop on the opset-24 static-cache graph: each dropped layer's TensorScatter pair, Attention and
 * both cache buffers leave the graph, KV bytes per token fall by exactly the dropped fraction, and
 * with no cache left the write_indices / nonpad_kv_seqlen inputs go too. (Logits against the
 * reference: RewriteMatchesReferenceTest, static flavour.)
 */
class DropOnStaticCacheGraphTest {
    @ParameterizedTest
    @ValueSource(ints = {0, 1, 2, 4, 5})
    void dropRemovesTheLayersScatterAttentionAndBuffers(int k) {
        LlamaWeights w = Llama2cCheckpoint.read(Fixtures.model("stories260K/stories260K.bin"));
        int layers = w.config.layers();
        assertEquals(5, layers);
        Graph g = new Graph(StaticCacheLlamaExporter.export(w, ExportDtype.FLOAT));
        DecoderLayout before = LayoutDiscovery.discover(g);
        // stories260K: 4 KV heads of 8 dims, K and V, fp32, per layer
        assertEquals(layers * 2L * 4 * 8 * 4, before.kvBytesPerToken());

        ChangeReport report = new DropAttentionPass(128).apply(g, before, LayerSelection.fromLayer(k, layers));

        int kept = k;
        assertEquals(before.kvBytesPerToken() * kept / layers, report.kvBytesPerTokenAfter());
        assertEquals(before.kvBytesPerToken(), report.kvBytesPerTokenBefore());
        assertEquals(kept * 2, count(g, "TensorScatter"));
        assertEquals(kept, count(g, "Attention"));
        List<String> inputs = new ArrayList<>();
        g.inputs().forEach(v -> inputs.add(v.getName()));
        List<String> outputs = new ArrayList<>();
        g.outputs().forEach(v -> outputs.add(v.getName()));
        for (int i = 0; i < layers; i++) {
            boolean dropped = i >= k;
            assertEquals(!dropped, inputs.contains(StaticCacheLlamaExporter.keyCache(i)), "key_cache." + i);
            assertEquals(!dropped, inputs.contains(StaticCacheLlamaExporter.valueCache(i)), "value_cache." + i);
            assertEquals(!dropped, outputs.contains(StaticCacheLlamaExporter.presentKeyCache(i)));
            assertEquals(!dropped, outputs.contains(StaticCacheLlamaExporter.presentValueCache(i)));
        }
        assertEquals(kept > 0, inputs.contains(StaticCacheLlamaExporter.WRITE_INDICES));
        assertEquals(kept > 0, inputs.contains(StaticCacheLlamaExporter.NONPAD_KV_SEQLEN));
        assertTrue(inputs.contains("input_ids"));
    }

    private static long count(Graph g, String opType) {
        return g.nodes().stream().map(NodeProto::getOpType).filter(opType::equals).count();
    }
}
