package org.attnskip.layout;

import org.attnskip.Fixtures;
import org.attnskip.layout.KvCacheIo.Layout;
import org.attnskip.onnx.NodeOrder;
import org.attnskip.onnx.OnnxModelIO;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Every third-party graph in ../shared/models, discovered with its exact layer count and KV names. */
class SharedModelsLayoutTest {

    private static DecoderLayout discover(Path p) {
        return LayoutDiscovery.discover(OnnxModelIO.load(p).graph());
    }

    @Test
    void ortGenaiLlamaMultiHeadAttention() {
        DecoderLayout l = discover(Fixtures.model("ortgenai-llama-fp16/model.onnx"));
        assertEquals(2, l.numLayers());
        assertEquals("ort-genai-mha", l.dialect());
        assertEquals(16, l.hiddenSize());
        assertEquals(1, l.numHeads());
        assertEquals(16, l.headDim());
        assertEquals(32000, l.vocabSize());
        assertEquals("input_ids", l.inputIds());
        assertEquals("attention_mask", l.attentionMask());
        assertEquals("position_ids", l.positionIds());
        assertEquals("logits", l.logits());
        for (int i = 0; i < 2; i++) {
            LayerLayout layer = l.layer(i);
            assertEquals(List.of("past_key_values." + i + ".key", "past_key_values." + i + ".value"), layer.kv().inputs());
            assertEquals(List.of("present." + i + ".key", "present." + i + ".value"), layer.kv().outputs());
            assertEquals(Layout.SEPARATE, layer.kv().layout());
            assertEquals(List.of("batch", "heads", "seq", "head_dim"), layer.kv().axes());
            assertEquals(AttentionKind.MULTI_HEAD_ATTENTION, layer.attention().kind());
            assertEquals("SkipSimplifiedLayerNormalization", layer.attention().residualAdd().getOpType());
            assertTrue(layer.attention().nodes().stream().anyMatch(n -> n.getOpType().equals("RotaryEmbedding")));
        }
        // layer 0's norm stands alone; layer 1's is fused into the previous layer's residual add
        assertEquals("SimplifiedLayerNormalization", l.layer(0).attention().norm().getOpType());
        assertFalse(l.layer(0).attention().normSharedWithPreviousAdd());
        assertTrue(l.layer(1).attention().normSharedWithPreviousAdd());
        // the shared norm is the previous layer's residual add, so it is not one of the sub-block's nodes
        assertFalse(l.layer(1).attention().nodes().contains(l.layer(1).attention().norm()));
        assertTrue(l.layer(0).attention().nodes().contains(l.layer(0).attention().norm()));
        // 2 layers x (key + value) x 1 head x 16 dims x 2 bytes (fp16)
        assertEquals(2 * 2 * 16 * 2, l.kvBytesPerToken());
    }

    @Test
    void ortFusedAttentionWithStackedPast() {
        DecoderLayout l = discover(Fixtures.model("ortgenai-gpt2-fp32/past.onnx"));
        assertEquals(5, l.numLayers());
        assertEquals("ort-fused-attention", l.dialect());
        assertEquals(32, l.hiddenSize());
        assertEquals(4, l.numHeads());
        assertEquals(8, l.headDim());
        assertEquals(1000, l.vocabSize());
        for (int i = 0; i < 5; i++) {
            LayerLayout layer = l.layer(i);
            assertEquals(List.of("past_" + i), layer.kv().inputs());
            assertEquals(List.of("present_" + i), layer.kv().outputs());
            assertEquals(Layout.STACKED, layer.kv().layout());
            assertEquals(List.of("kv", "batch", "heads", "seq", "head_dim"), layer.kv().axes());
            assertEquals("SkipLayerNormalization", layer.attention().residualAdd().getOpType());
        }
        assertEquals("EmbedLayerNormalization", l.layer(0).attention().norm().getOpType());
        for (LayerLayout layer : l.layers()) {
            // the embedding and the fused Skip norms before each layer belong to no attention sub-block
            assertEquals(List.of("Attention", "MatMul"),
                    layer.attention().nodes().stream().map(n -> n.getOpType()).toList());
        }
        assertEquals(5 * 2 * 4 * 8 * 4, l.kvBytesPerToken());
    }

    @Test
    void unfusedTorchGpt2NotInTopologicalOrder() {
        Path file = Fixtures.model("torch-gpt2-past/gpt2_past.onnx");
        // discovery must not depend on node order: this file reads 144 values before making them
        assertEquals(144, NodeOrder.readsBeforeProduced(OnnxModelIO.load(file).graph()).size());
        DecoderLayout l = discover(file);
        assertEquals(12, l.numLayers());
        assertEquals("unfused", l.dialect());
        assertEquals(4, l.hiddenSize());
        assertEquals(2, l.numHeads());
        assertEquals(2, l.headDim());
        assertFalse(l.hasLmHead());
        assertEquals("last_state", l.logits());
        for (int i = 0; i < 12; i++) {
            LayerLayout layer = l.layer(i);
            assertEquals(List.of("past_" + i), layer.kv().inputs());
            assertEquals(List.of("present_" + i), layer.kv().outputs());
            assertEquals(Layout.STACKED, layer.kv().layout());
            assertEquals("Add", layer.attention().residualAdd().getOpType());
            assertEquals("Softmax", layer.attention().core().getOpType());
            if (i > 0) {
                assertEquals(l.layer(i - 1).mlp().residualSum(), layer.residualIn());
            }
        }
        assertEquals(12 * 2 * 2 * 2 * 4, l.kvBytesPerToken());
    }
}
