package org.attnskip.layout;

import ai.onnx.proto.OnnxMl.ModelProto;
import ai.onnx.proto.OnnxMl.NodeProto;
import ai.onnx.proto.OnnxMl.TensorProto.DataType;
import ai.onnx.proto.OnnxMl.TypeProto;
import ai.onnx.proto.OnnxMl.ValueInfoProto;
import org.attnskip.OrtFeeds;
import org.attnskip.export.ExportDtype;
import org.attnskip.export.LlamaOnnxExporter;
import org.attnskip.export.LlamaWeights;
import org.attnskip.export.TestLlamaWeights;
import org.attnskip.onnx.Graph;
import org.attnskip.onnx.OnnxModelIO;
import org.attnskip.reference.Manipulation;
import org.attnskip.reference.ReferenceLlama;
import org.attnskip.rewrite.DropAttentionPass;
import org.attnskip.rewrite.LayerSelection;
import org.attnskip.runtime.DecoderSession;
import org.attnskip.runtime.Device;
import org.attnskip.runtime.OrtSessionFactory;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtSession;
import java.nio.FloatBuffer;
import java.util.HashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * One-layer decoders whose outputs come in torch.onnx's order, the present K/V first and the model's
 * output last under an opaque name with no declared shape: with an LM head (logits), and without
 * one (the final residual stream). Discovery must take the last output for the logits, not the
 * present, and tell the two apart by data flow; drop of the one layer runs in ONNX Runtime with no
 * KV left, and the outputs match the reference implementation.
 */
class OddOutputsTest {
    private static final float TOLERANCE = 1e-4f;
    private static final int[] TOKENS = {1, 17, 42, 5, 63, 20, 8};

    @TempDir
    Path tmp;

    private final LlamaWeights w = TestLlamaWeights.random(TestLlamaWeights.config(32, 64, 1, 4, 2, 71, 32, false), 3);

    @Test
    void logitsListedAfterThePresentWithoutAShape() throws Exception {
        ModelProto model = presentFirst(true);
        DecoderLayout l = LayoutDiscovery.discover(new Graph(model));
        assertEquals(1, l.numLayers());
        assertEquals("3", l.logits());
        assertTrue(l.hasLmHead());
        assertEquals(71, l.vocabSize());
        assertEquals(List.of("present.0.key", "present.0.value"), l.layer(0).kv().outputs());

        ReferenceLlama ref = new ReferenceLlama(w);
        Path base = save(model, "base.onnx");
        assertMatches(base, ref.logitsAllPositions(TOKENS));
        Path dropped = drop(model, 0);
        assertEquals(0, LayoutDiscovery.discoverToRun(new Graph(OnnxModelIO.load(dropped).proto())).kvBytesPerToken());
        assertMatches(dropped, ref.logitsAllPositions(TOKENS, new Manipulation.Drop(Set.of(0))));
        Path none = drop(model, 1);
        assertEquals(l.kvBytesPerToken(), LayoutDiscovery.discover(new Graph(OnnxModelIO.load(none).proto())).kvBytesPerToken());
        assertMatches(none, ref.logitsAllPositions(TOKENS));
    }

    @Test
    void lastHiddenStateListedAfterThePresentWithoutAShape() throws Exception {
        ModelProto model = presentFirst(false);
        DecoderLayout l = LayoutDiscovery.discover(new Graph(model));
        assertEquals(1, l.numLayers());
        assertEquals("3", l.logits());
        assertFalse(l.hasLmHead());
        assertEquals(List.of("present.0.key", "present.0.value"), l.layer(0).kv().outputs());
        assertEquals(2 * 2 * 8 * 4, l.kvBytesPerToken());

        float[][][] streams = new ReferenceLlama(w).residualStreams(TOKENS);
        float[] last = prefillOutput(save(model, "base.onnx"));
        for (int t = 0; t < TOKENS.length; t++) {
            float[] row = Arrays.copyOfRange(last, t * 32, (t + 1) * 32);
            assertTrue(org.attnskip.Deltas.maxAbsDelta(streams[1][t], row) <= TOLERANCE, "pos " + t);
        }
        Path dropped = drop(model, 0);
        DecoderLayout after = LayoutDiscovery.discoverToRun(new Graph(OnnxModelIO.load(dropped).proto()));
        assertEquals(0, after.kvBytesPerToken());
        assertFalse(after.hasLmHead());
        // without attention the stream is h + MLP(norm(h)) of the embedding: it runs, and differs from the full layer's
        float[] droppedOut = prefillOutput(dropped);
        assertEquals(last.length, droppedOut.length);
        assertTrue(org.attnskip.Deltas.maxAbsDelta(last, droppedOut) > 10 * TOLERANCE);
    }

    /** Output "3" of one prefill of TOKENS from an empty cache, read with ONNX Runtime directly (no LM head to sample). */
    private static float[] prefillOutput(Path graph) throws Exception {
        OrtEnvironment env = OrtSessionFactory.environment();
        try (OrtSession session = env.createSession(graph.toString(), new OrtSession.SessionOptions())) {
            Map<String, OnnxTensor> feeds = new HashMap<>();
            try {
                feeds.put("input_ids", OnnxTensor.createTensor(env, new long[][] {longs()}));
                feeds.put("attention_mask", OnnxTensor.createTensor(env, new long[][] {ones()}));
                feeds.put("position_ids", OnnxTensor.createTensor(env, new long[][] {positions()}));
                for (String in : session.getInputNames()) {
                    if (in.startsWith("past_key_values")) {
                        feeds.put(in, OnnxTensor.createTensor(env, FloatBuffer.allocate(0), new long[] {1, 2, 0, 8}));
                    } else if (in.equals("logits_to_keep")) {
                        feeds.put(in, OnnxTensor.createTensor(env, new long[] {0})); // every position
                    }
                }
                try (OrtSession.Result r = session.run(feeds)) {
                    return OrtFeeds.toFloats((OnnxTensor) r.get("3").get());
                }
            } finally {
                feeds.values().forEach(OnnxTensor::close);
            }
        }
    }

    /**
     * The exporter's one-layer graph with its outputs reordered: present.0.key, present.0.value, then
     * "3" (torch's numeric names) without a shape: the logits, or with no head the final residual stream.
     */
    private ModelProto presentFirst(boolean lmHead) {
        Graph g = new Graph(LlamaOnnxExporter.export(w, ExportDtype.FLOAT));
        String value = "logits";
        if (!lmHead) {
            NodeProto head = g.producer("logits");
            String normed = head.getInput(0);
            NodeProto finalNorm = g.producer(normed);
            // the final norm's last Mul reads the norm of the stream; walk to the stream it normalises
            value = streamBefore(g, finalNorm);
            g.remove(head);
        }
        g.removeOutput("logits");
        g.add(NodeProto.newBuilder().setOpType("Identity").setName("output_identity").addInput(value).addOutput("3").build());
        g.addOutput(ValueInfoProto.newBuilder().setName("3").setType(TypeProto.newBuilder()
                .setTensorType(TypeProto.Tensor.newBuilder().setElemType(DataType.FLOAT_VALUE))).build());
        g.cleanup();
        g.toposort();
        ModelProto m = g.toModel();
        assertEquals(List.of("present.0.key", "present.0.value", "3"),
                m.getGraph().getOutputList().stream().map(ValueInfoProto::getName).toList());
        return m;
    }

    /** The value the exporter's final RMSNorm starts from (its Pow's input): the last residual sum. */
    private static String streamBefore(Graph g, NodeProto normOutputProducer) {
        for (NodeProto n : g.nodes()) {
            if (n.getName().equals("/model/norm/Pow")) {
                return n.getInput(0);
            }
        }
        throw new IllegalStateException("no final norm in " + normOutputProducer.getName());
    }

    private Path drop(ModelProto model, int k) {
        Graph g = new Graph(model);
        new DropAttentionPass(128).apply(g, LayoutDiscovery.discover(g), LayerSelection.fromLayer(k, 1));
        return save(g.toModel(), "drop" + k + ".onnx");
    }

    private Path save(ModelProto m, String name) {
        Path p = tmp.resolve(name);
        OnnxModelIO.save(m, null, p, false);
        return p;
    }

    /** One prefill, then token by token with the cache. */
    private static void assertMatches(Path graph, float[][] expected) {
        try (DecoderSession s = DecoderSession.open(graph, Device.CPU)) {
            var out = s.run(new long[][] {longs()}, new long[][] {ones()}, new long[][] {positions()}, s.emptyCache(1));
            for (int t = 0; t < TOKENS.length; t++) {
                float d = org.attnskip.Deltas.maxAbsDelta(expected[t], out.logits().at(0, t));
                assertTrue(d <= TOLERANCE, "prefill pos " + t + ": " + d);
            }
            out.cache().close();
            var cache = s.emptyCache(1);
            for (int t = 0; t < TOKENS.length; t++) {
                long[] mask = new long[t + 1];
                Arrays.fill(mask, 1);
                var step = s.run(new long[][] {{TOKENS[t]}}, new long[][] {mask}, new long[][] {{t}}, cache);
                float d = org.attnskip.Deltas.maxAbsDelta(expected[t], step.logits().at(0, 0));
                assertTrue(d <= TOLERANCE, "decode pos " + t + ": " + d);
                cache = step.cache();
            }
            cache.close();
        }
    }

    private static long[] longs() {
        return Arrays.stream(TOKENS).asLongStream().toArray();
    }

    private static long[] ones() {
        long[] o = new long[TOKENS.length];
        Arrays.fill(o, 1);
        return o;
    }

    private static long[] positions() {
        long[] o = new long[TOKENS.length];
        for (int i = 0; i < o.length; i++) {
            o[i] = i;
        }
        return o;
    }
}
