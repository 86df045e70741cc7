package org.attnskip.layout;

import ai.onnx.proto.OnnxMl.ModelProto;
import ai.onnx.proto.OnnxMl.NodeProto;
import ai.onnx.proto.OnnxMl.ValueInfoProto;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtSession;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.attnskip.CliRun;
import org.attnskip.Deltas;
import org.attnskip.OrtFeeds;
import org.attnskip.onnx.Graph;
import org.attnskip.onnx.OnnxModelIO;
import org.attnskip.runtime.OrtSessionFactory;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.io.TempDir;

import java.nio.FloatBuffer;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The one-layer torch.onnx GPT-2 of issue 12 ({@link OneLayerGpt2}): its outputs list the stacked
 * present_0 before the final hidden state, which has no declared shape and no LM head. inspect
 * must take the hidden state for the model's output and past_0/present_0 for the layer's stacked
 * cache; drop of the one layer must give a graph that runs, with no cache left, whose output is
 * ln_f(h + MLP(ln_2(h))) of the embeddings, computed here independently.
 */
class OneLayerGpt2Test {
    private static final float TOLERANCE = 1e-4f;
    private static final long[] IDS = {7, 3, 41, 19, 0, 25};

    @TempDir
    Path tmp;

    @ParameterizedTest(name = "position_ids input: {0}")
    @ValueSource(booleans = {false, true})
    void inspectFindsOneLayerWithAStackedCacheAndNoLmHead(boolean positionIdsInput) throws Exception {
        ModelProto model = new OneLayerGpt2(11, positionIdsInput).build();
        assertEquals(List.of(OneLayerGpt2.PRESENT, OneLayerGpt2.OUTPUT),
                model.getGraph().getOutputList().stream().map(ValueInfoProto::getName).toList());
        DecoderLayout l = LayoutDiscovery.discover(new Graph(model));
        assertEquals(1, l.numLayers());
        assertEquals(OneLayerGpt2.OUTPUT, l.logits());
        assertFalse(l.hasLmHead());
        assertEquals(OneLayerGpt2.HIDDEN, l.hiddenSize());
        assertEquals(OneLayerGpt2.HEADS, l.numHeads());
        assertEquals(OneLayerGpt2.HEAD_DIM, l.headDim());
        assertEquals(List.of(OneLayerGpt2.PAST), l.layer(0).kv().inputs());
        assertEquals(List.of(OneLayerGpt2.PRESENT), l.layer(0).kv().outputs());
        assertEquals(KvCacheIo.Layout.STACKED, l.layer(0).kv().layout());
        assertEquals(2 * OneLayerGpt2.HEADS * OneLayerGpt2.HEAD_DIM * 4, l.kvBytesPerToken());

        Path file = save(model, "gpt2.onnx");
        CliRun r = CliRun.of("inspect", "--json", file.toString());
        assertEquals(0, r.code(), r.err());
        JsonNode json = new ObjectMapper().readTree(r.out());
        assertEquals(1, json.get("layers").asInt());
        assertEquals(OneLayerGpt2.OUTPUT, json.get("roles").get("last_hidden_state").asText());
        assertEquals("stacked", json.get("kv").get(0).get("layout").asText());

        // the graph runs, and its present_0 holds the past then the new K/V: [2, 1, H, P + S, Dh]
        Map<String, float[]> out = OrtFeeds.run(file, l, 4, 3, 1);
        assertEquals(2 * OneLayerGpt2.HEADS * 7 * OneLayerGpt2.HEAD_DIM, out.get(OneLayerGpt2.PRESENT).length);
        assertEquals(4 * OneLayerGpt2.HIDDEN, out.get(OneLayerGpt2.OUTPUT).length);
    }

    /**
     * Counting positions on from past_0's length, the dropped graph still reads past_0's shape (drop
     * keeps the input for that, as on torch-gpt2-past), never its values: they are fed as NaN here.
     * With position_ids fed, past_0 leaves the graph.
     */
    @ParameterizedTest(name = "position_ids input: {0}")
    @ValueSource(booleans = {false, true})
    void dropOfTheOneLayerRunsWithoutItsCache(boolean positionIdsInput) throws Exception {
        OneLayerGpt2 gpt2 = new OneLayerGpt2(11, positionIdsInput);
        ModelProto model = gpt2.build();
        Path file = save(model, "gpt2.onnx");
        Path out = tmp.resolve("dropped.onnx");
        CliRun r = CliRun.of("optimize", file.toString(), "-o", out.toString(), "--drop-attn-above", "0");
        assertEquals(0, r.code(), r.err());

        ModelProto dropped = OnnxModelIO.load(out).proto();
        assertEquals(List.of(OneLayerGpt2.OUTPUT),
                dropped.getGraph().getOutputList().stream().map(ValueInfoProto::getName).toList());
        DecoderLayout after = LayoutDiscovery.discoverToRun(new Graph(dropped));
        assertEquals(0, after.kvBytesPerToken(), "KV bytes fall by the dropped fraction (all of it)");
        assertFalse(after.hasLmHead());
        boolean pastKept = dropped.getGraph().getInputList().stream().anyMatch(v -> v.getName().equals(OneLayerGpt2.PAST));
        assertEquals(!positionIdsInput, pastKept);
        for (NodeProto n : dropped.getGraph().getNodeList()) {
            if (n.getInputList().contains(OneLayerGpt2.PAST)) {
                assertEquals("Shape", n.getOpType(), n.getName());
            }
        }
        for (int past : new int[] {0, 5}) {
            float[] actual = run(out, past);
            float[][] expected = gpt2.droppedForward(IDS, past);
            for (int t = 0; t < IDS.length; t++) {
                float[] row = Arrays.copyOfRange(actual, t * OneLayerGpt2.HIDDEN, (t + 1) * OneLayerGpt2.HIDDEN);
                float d = Deltas.maxAbsDelta(expected[t], row);
                worst = Math.max(worst, d);
                assertTrue(d <= TOLERANCE, "past " + past + " pos " + t + ": " + d);
            }
        }
        // the un-dropped graph differs: the attention did something
        float[] full = run(file, 0);
        float[] first = Arrays.copyOfRange(full, 0, OneLayerGpt2.HIDDEN);
        assertTrue(Deltas.maxAbsDelta(gpt2.droppedForward(IDS, 0)[0], first) > 100 * TOLERANCE);
    }

    private static float worst;

    @org.junit.jupiter.api.AfterAll
    static void printWorst() {
        System.out.printf("one-layer GPT-2, drop: largest |delta| against ln_f(h + MLP(ln_2(h))) %.2e%n", worst);
    }

    /** The hidden-state output for IDS after a past of the given length whose values are all NaN. */
    private static float[] run(Path graph, int past) throws Exception {
        long[] positions = new long[IDS.length];
        for (int t = 0; t < positions.length; t++) {
            positions[t] = past + t;
        }
        OrtEnvironment env = OrtSessionFactory.environment();
        try (OrtSession session = env.createSession(graph.toString(), new OrtSession.SessionOptions())) {
            Map<String, OnnxTensor> feeds = new HashMap<>();
            try {
                feeds.put("input_ids", OnnxTensor.createTensor(env, new long[][] {IDS}));
                if (session.getInputNames().contains("position_ids")) {
                    feeds.put("position_ids", OnnxTensor.createTensor(env, new long[][] {positions}));
                }
                if (session.getInputNames().contains(OneLayerGpt2.PAST)) {
                    float[] nan = new float[2 * OneLayerGpt2.HEADS * past * OneLayerGpt2.HEAD_DIM];
                    Arrays.fill(nan, past == 0 ? 0f : Float.NaN);
                    feeds.put(OneLayerGpt2.PAST, OnnxTensor.createTensor(env, FloatBuffer.wrap(nan),
                            new long[] {2, 1, OneLayerGpt2.HEADS, past, OneLayerGpt2.HEAD_DIM}));
                }
                try (OrtSession.Result res = session.run(feeds)) {
                    return OrtFeeds.toFloats((OnnxTensor) res.get(OneLayerGpt2.OUTPUT).get());
                }
            } finally {
                feeds.values().forEach(OnnxTensor::close);
            }
        }
    }

    private Path save(ModelProto m, String name) {
        Path p = tmp.resolve(name);
        OnnxModelIO.save(m, null, p, false);
        return p;
    }
}
