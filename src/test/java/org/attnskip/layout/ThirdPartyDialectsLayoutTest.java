package org.attnskip.layout;

import org.attnskip.Deltas;
import ai.onnx.proto.OnnxMl.ModelProto;
import ai.onnx.proto.OnnxMl.NodeProto;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OnnxValue;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import org.attnskip.OrtFeeds;
import org.attnskip.layout.KvCacheIo.Layout;
import org.attnskip.layout.ThirdPartyGraphs.Dialect;
import org.attnskip.onnx.OnnxModelIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.FloatBuffer;
import java.nio.LongBuffer;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The two dialects we have no real file of, built by {@link ThirdPartyGraphs}: ORT GenAI's
 * GroupQueryAttention (packed and separate Q/K/V) and the standard ONNX Attention operator.
 * Discovery must read each exactly, and each graph must run on ORT as a real causal decoder.
 */
class ThirdPartyDialectsLayoutTest {
    @TempDir
    Path dir;

    private static DecoderLayout discover(Path p) {
        return LayoutDiscovery.discover(OnnxModelIO.load(p).graph());
    }

    private static List<String> opTypes(List<NodeProto> nodes) {
        return nodes.stream().map(NodeProto::getOpType).toList();
    }

    /** What the GenAI layouts share, packed or not. */
    private static void assertGenAiGqa(DecoderLayout l, int layers) {
        assertEquals(layers, l.numLayers());
        assertEquals("ort-genai-gqa", l.dialect());
        assertEquals(64, l.hiddenSize());
        assertEquals(4, l.numHeads());
        assertEquals(2, l.numKvHeads());
        assertEquals(16, l.headDim());
        assertEquals(64, l.vocabSize());
        assertEquals("input_ids", l.inputIds());
        assertEquals("attention_mask", l.attentionMask());
        assertEquals("logits", l.logits());
        assertTrue(l.hasLmHead());
        for (int i = 0; i < layers; i++) {
            LayerLayout layer = l.layer(i);
            assertEquals(List.of("past_key_values." + i + ".key", "past_key_values." + i + ".value"), layer.kv().inputs());
            assertEquals(List.of("present." + i + ".key", "present." + i + ".value"), layer.kv().outputs());
            assertEquals(Layout.SEPARATE, layer.kv().layout());
            assertEquals(List.of("batch", "heads", "seq", "head_dim"), layer.kv().axes());
            assertEquals(AttentionKind.GROUP_QUERY_ATTENTION, layer.attention().kind());
            assertEquals("GroupQueryAttention", layer.attention().core().getOpType());
            assertEquals("SkipSimplifiedLayerNormalization", layer.attention().residualAdd().getOpType());
            assertEquals("/model/layers." + i + "/post_attention_layernorm/SkipLayerNorm",
                    layer.attention().residualAdd().getName());
            String mlpAdd = i == layers - 1 ? "/model/layers." + layers + "/final_norm_layernorm/SkipLayerNorm"
                    : "/model/layers." + (i + 1) + "/input_layernorm/SkipLayerNorm";
            assertEquals(mlpAdd, layer.mlp().residualAdd().getName());
            assertEquals(i == 0 ? "/model/embed_tokens/Gather/output_0"
                    : "/model/layers." + i + "/input_layernorm/output_3", layer.residualIn());
            // the mask plumbing (ReduceSum, Sub, Cast, Shape, Gather) is shared by all layers, not part of one
            List<String> ops = opTypes(layer.attention().nodes());
            assertFalse(ops.contains("ReduceSum"), ops.toString());
            assertTrue(ops.contains("GroupQueryAttention"), ops.toString());
        }
        assertEquals("SimplifiedLayerNormalization", l.layer(0).attention().norm().getOpType());
        assertFalse(l.layer(0).attention().normSharedWithPreviousAdd());
        for (int i = 1; i < layers; i++) {
            assertTrue(l.layer(i).attention().normSharedWithPreviousAdd());
            assertEquals(l.layer(i - 1).mlp().residualAdd(), l.layer(i).attention().norm());
            assertFalse(l.layer(i).attention().nodes().contains(l.layer(i).attention().norm()),
                    "layer " + i + "'s fused input norm is the previous layer's residual add");
        }
        assertEquals("", l.layer(layers - 1).mlp().residualSum(), "the final norm fuses the last add without exposing it");
        // layers x (key + value) x 2 kv heads x 16 dims x 4 bytes
        assertEquals(layers * 2 * 2 * 16 * 4, l.kvBytesPerToken());
    }

    @Test
    void ortGenAiGqaWithPackedQkv() throws OrtException {
        Path model = ThirdPartyGraphs.write(Dialect.GQA_PACKED, 3, 11, dir.resolve("gqa-packed.onnx"));
        DecoderLayout l = discover(model);
        assertGenAiGqa(l, 3);
        assertNull(l.positionIds(), "with rotary inside GQA, GenAI's graph takes no position_ids");
        for (int i = 0; i < 3; i++) {
            NodeProto gqa = l.layer(i).attention().core();
            assertEquals("", gqa.getInput(1));
            assertEquals("", gqa.getInput(2));
            assertEquals("/model/layers." + i + "/attn/qkv_proj/MatMul/output_0", gqa.getInput(0));
            // layer 0's norm stands alone and belongs to the sub-block; later ones are the previous layer's add
            List<String> expected = i == 0 ? List.of("SimplifiedLayerNormalization", "MatMul", "GroupQueryAttention", "MatMul")
                    : List.of("MatMul", "GroupQueryAttention", "MatMul");
            assertEquals(expected, opTypes(l.layer(i).attention().nodes()));
        }
        assertRuns(model, l, 3);
    }

    @Test
    void ortGenAiGqaWithSeparateQkv() throws OrtException {
        Path model = ThirdPartyGraphs.write(Dialect.GQA_SEPARATE, 2, 12, dir.resolve("gqa-separate.onnx"));
        DecoderLayout l = discover(model);
        assertGenAiGqa(l, 2);
        assertEquals("position_ids", l.positionIds());
        for (int i = 0; i < 2; i++) {
            assertEquals("/model/layers." + i + "/input_layernorm/output_0", l.layer(i).attention().normOutput());
            List<String> ops = opTypes(l.layer(i).attention().nodes());
            assertEquals(List.of("MatMul", "MatMul", "MatMul", "RotaryEmbedding", "RotaryEmbedding", "GroupQueryAttention",
                    "MatMul"), i == 0 ? ops.subList(1, ops.size()) : ops);
        }
        assertRuns(model, l, 2);
    }

    @Test
    void standardOnnxAttentionOpset23() throws OrtException {
        Path model = ThirdPartyGraphs.write(Dialect.ONNX_ATTENTION, 4, 13, dir.resolve("onnx-attention.onnx"));
        DecoderLayout l = discover(model);
        assertEquals(4, l.numLayers());
        assertEquals("onnx-attention", l.dialect());
        assertEquals(32, l.hiddenSize());
        assertEquals(4, l.numHeads());
        assertEquals(2, l.numKvHeads());
        assertEquals(8, l.headDim());
        assertEquals(64, l.vocabSize());
        assertEquals("input_ids", l.inputIds());
        assertEquals("attention_mask", l.attentionMask());
        assertEquals("position_ids", l.positionIds());
        assertEquals("logits", l.logits());
        for (int i = 0; i < 4; i++) {
            LayerLayout layer = l.layer(i);
            String p = "/model/layers." + i;
            assertEquals(List.of("past_key_values." + i + ".key", "past_key_values." + i + ".value"), layer.kv().inputs());
            assertEquals(List.of("present." + i + ".key", "present." + i + ".value"), layer.kv().outputs());
            assertEquals(Layout.SEPARATE, layer.kv().layout());
            assertEquals(List.of("batch", "heads", "seq", "head_dim"), layer.kv().axes());
            assertEquals(AttentionKind.ONNX_ATTENTION, layer.attention().kind());
            assertEquals("Attention", layer.attention().core().getOpType());
            assertEquals("Add", layer.attention().residualAdd().getOpType());
            assertEquals(p + "/Add", layer.attention().residualAdd().getName());
            assertEquals("Add", layer.mlp().residualAdd().getOpType());
            assertEquals(p + "/Add_1", layer.mlp().residualAdd().getName());
            assertEquals(p + "/Add_1/output_0", layer.mlp().residualSum());
            assertEquals(i == 0 ? "/model/embed_tokens/Gather/output_0" : "/model/layers." + (i - 1) + "/Add_1/output_0",
                    layer.residualIn());
            assertEquals("RMSNormalization", layer.attention().norm().getOpType());
            assertEquals(p + "/input_layernorm/RMSNormalization", layer.attention().norm().getName());
            assertFalse(layer.attention().normSharedWithPreviousAdd());
            assertEquals(p + "/post_attention_layernorm/RMSNormalization", layer.mlp().norm().getName());
            List<String> ops = opTypes(layer.attention().nodes());
            // the sub-block holds its norm, projections and rotary, but not the shared mask or cos/sin
            assertTrue(ops.containsAll(List.of("RMSNormalization", "Attention", "Neg", "Concat")), ops.toString());
            assertFalse(ops.contains("Range") || ops.contains("Cos") || ops.contains("LessOrEqual"), ops.toString());
            assertEquals(4, ops.stream().filter("MatMul"::equals).count(), ops.toString());
        }
        // 4 layers x (key + value) x 2 kv heads x 8 dims x 4 bytes
        assertEquals(4 * 2 * 2 * 8 * 4, l.kvBytesPerToken());
        assertRuns(model, l, 4);
    }

    @Test
    void sameSeedSameGraphOtherSeedOtherWeights() {
        for (Dialect d : Dialect.values()) {
            ModelProto a = ThirdPartyGraphs.build(d, 2, 5);
            assertTrue(a.equals(ThirdPartyGraphs.build(d, 2, 5)), d.name());
            ModelProto other = ThirdPartyGraphs.build(d, 2, 6);
            assertEquals(a.getGraph().getNodeList(), other.getGraph().getNodeList(), d.name());
            assertFalse(a.getGraph().getInitializerList().equals(other.getGraph().getInitializerList()), d.name());
        }
    }

    /**
     * Runs the graph through OrtFeeds (random past), then checks that it is a causal decoder with a
     * working cache: a prefix's logits do not depend on later tokens, and logits of a 5-token prefill
     * equal those of a 3-token prefill continued by 2 tokens fed with its present K/V, and of a 4-token
     * prefill continued by 1.
     */
    private static void assertRuns(Path model, DecoderLayout l, int layers) throws OrtException {
        Map<String, float[]> out = OrtFeeds.run(model, l, 3, 2, 7);
        assertEquals(1 + 2 * layers, out.size());
        assertEquals(3 * 64, out.get("logits").length);
        assertEquals(2 * 5 * l.headDim(), out.get("present.0.key").length);
        for (float v : out.get("logits")) {
            assertTrue(Float.isFinite(v));
        }

        long[] tokens = {1, 17, 42, 5, 63};
        OrtEnvironment env = OrtEnvironment.getEnvironment();
        try (OrtSession.SessionOptions opts = new OrtSession.SessionOptions();
             OrtSession session = env.createSession(model.toString(), opts)) {
            float[] full = step(env, session, l, tokens, 0, 5, zeroPast(l, 0)).logits;
            float[] prefix = step(env, session, l, tokens, 0, 3, zeroPast(l, 0)).logits;
            assertTrue(Deltas.maxAbsDelta(Arrays.copyOfRange(full, 0, 3 * 64), prefix) < 1e-4f, "causal");
            for (int split : new int[] {3, 4}) {
                Step prefill = step(env, session, l, tokens, 0, split, zeroPast(l, 0));
                Step rest = step(env, session, l, tokens, split, 5, prefill.presents);
                float[] expected = Arrays.copyOfRange(full, split * 64, 5 * 64);
                assertTrue(Deltas.maxAbsDelta(expected, rest.logits) < 1e-4f,
                        "split at " + split + ": " + Deltas.maxAbsDelta(expected, rest.logits));
            }
            // and the cache matters: continuing from a zero cache gives other logits
            Step fromZeros = step(env, session, l, tokens, 3, 5, zeroPast(l, 3));
            assertTrue(Deltas.maxAbsDelta(Arrays.copyOfRange(full, 3 * 64, 5 * 64), fromZeros.logits) > 1e-2f);
        }
    }

    private record Step(float[] logits, Map<String, float[]> presents) {
    }

    /** A cache of {@code length} zero positions, keyed like a step's presents. */
    private static Map<String, float[]> zeroPast(DecoderLayout l, int length) {
        Map<String, float[]> past = new HashMap<>();
        for (LayerLayout layer : l.layers()) {
            for (String present : layer.kv().outputs()) {
                past.put(present, new float[l.numKvHeads() * length * l.headDim()]);
            }
        }
        return past;
    }

    /** Feeds tokens [from, to) after a past of length {@code from} (given as the previous step's presents). */
    private static Step step(OrtEnvironment env, OrtSession session, DecoderLayout l, long[] tokens, int from, int to,
                             Map<String, float[]> past) throws OrtException {
        int seq = to - from;
        Map<String, OnnxTensor> feeds = new HashMap<>();
        try {
            feeds.put(l.inputIds(), OnnxTensor.createTensor(env,
                    LongBuffer.wrap(Arrays.copyOfRange(tokens, from, to)), new long[] {1, seq}));
            long[] mask = new long[to];
            Arrays.fill(mask, 1);
            feeds.put(l.attentionMask(), OnnxTensor.createTensor(env, LongBuffer.wrap(mask), new long[] {1, to}));
            if (l.positionIds() != null) {
                long[] pos = new long[seq];
                for (int i = 0; i < seq; i++) {
                    pos[i] = from + i;
                }
                feeds.put(l.positionIds(), OnnxTensor.createTensor(env, LongBuffer.wrap(pos), new long[] {1, seq}));
            }
            for (LayerLayout layer : l.layers()) {
                for (int k = 0; k < 2; k++) {
                    float[] values = past.get(layer.kv().outputs().get(k));
                    feeds.put(layer.kv().inputs().get(k), OnnxTensor.createTensor(env, FloatBuffer.wrap(values),
                            new long[] {1, l.numKvHeads(), from, l.headDim()}));
                }
            }
            try (OrtSession.Result r = session.run(feeds)) {
                Map<String, float[]> presents = new HashMap<>();
                float[] logits = null;
                for (Map.Entry<String, OnnxValue> e : r) {
                    float[] v = OrtFeeds.toFloats((OnnxTensor) e.getValue());
                    if (e.getKey().equals(l.logits())) {
                        logits = v;
                    } else {
                        presents.put(e.getKey(), v);
                    }
                }
                return new Step(logits, presents);
            }
        } finally {
            feeds.values().forEach(OnnxTensor::close);
        }
    }
}
