package org.attnskip.rewrite;

import ai.onnx.proto.OnnxMl.ModelProto;
import ai.onnx.proto.OnnxMl.NodeProto;
import ai.onnxruntime.OnnxTensor;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.attnskip.CliRun;
import org.attnskip.Deltas;
import org.attnskip.TestTokens;
import org.attnskip.export.ExportDtype;
import org.attnskip.export.LlamaOnnxExporter;
import org.attnskip.export.LlamaWeights;
import org.attnskip.export.TestLlamaWeights;
import org.attnskip.layout.DecoderLayout;
import org.attnskip.layout.LayoutDiscovery;
import org.attnskip.onnx.BadInputException;
import org.attnskip.onnx.Graph;
import org.attnskip.onnx.OnnxModelIO;
import org.attnskip.reference.Manipulation;
import org.attnskip.reference.Noise;
import org.attnskip.reference.NoiseDraw;
import org.attnskip.reference.ReferenceLlama;
import org.attnskip.runtime.DecoderSession;
import org.attnskip.runtime.Device;
import org.attnskip.runtime.OrtSessionFactory;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.FloatBuffer;
import java.nio.file.Path;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

import static org.attnskip.TestTokens.ones;
import static org.attnskip.TestTokens.range;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A decoder whose layers live in ONNX local functions: each layer a call to one shared
 * {@code DecoderLayer} function, its attention a call to a nested {@code SelfAttention} function,
 * its norm epsilons attribute references ({@link FunctionWrappedLayers}). Loading inlines them, so
 * inspect recognises every layer, and drop, freeze and random rewrite the inlined graph, which is
 * what they save; each output matches the reference implementation.
 */
class LocalFunctionLayersTest {
    private static final float TOLERANCE = 1e-4f;
    private static final int LAYERS = 4;
    private static final int SEQ = 12;

    @TempDir
    static Path tmp;
    private static LlamaWeights weights;
    private static ReferenceLlama reference;
    private static ModelProto wrapped;
    private static Path wrappedFile;
    private static int[] tokens;

    @BeforeAll
    static void wrapAnExport() {
        weights = TestLlamaWeights.random(TestLlamaWeights.config(32, 64, LAYERS, 4, 2, 71, 32, false), 5);
        reference = new ReferenceLlama(weights);
        wrapped = FunctionWrappedLayers.wrap(LlamaOnnxExporter.export(weights, ExportDtype.FLOAT), LAYERS);
        wrappedFile = tmp.resolve("functions.onnx");
        OnnxModelIO.save(wrapped, null, wrappedFile, false);
        tokens = TestTokens.tokens(71, SEQ, 3);
    }

    @Test
    void layersAreFunctionCallsThatOnnxRuntimeRunsAsTheReference() {
        assertEquals(2, wrapped.getFunctionsCount());
        assertEquals(0, wrapped.getGraph().getNodeList().stream().filter(n -> n.getOpType().equals("Softmax")).count());
        assertEquals(LAYERS, wrapped.getGraph().getNodeList().stream().filter(n -> n.getOpType().equals("DecoderLayer")).count());
        // without inlining there is no attention to find
        assertThrows(BadInputException.class, () -> LayoutDiscovery.discover(new Graph(wrapped)));
        // ONNX Runtime inlines the functions itself: the wrapping is faithful
        assertMatches("wrapped", wrappedFile, reference.logitsAllPositions(tokens));
    }

    @Test
    void inspectRecognisesEveryLayer() throws Exception {
        CliRun r = CliRun.of("inspect", "--json", wrappedFile.toString());
        assertEquals(0, r.code(), r.err());
        JsonNode json = new ObjectMapper().readTree(r.out());
        assertEquals(LAYERS, json.get("layers").asInt());
        assertEquals(4, json.get("num_heads").asInt());
        assertEquals(2, json.get("num_kv_heads").asInt());
        assertEquals(71, json.get("vocab_size").asInt());
        assertEquals(java.util.List.of("DecoderLayer x4", "SelfAttention x4"),
                new ObjectMapper().convertValue(json.get("inlined_functions"), java.util.List.class));
        // K and V, 2 KV heads of 8 floats, per layer
        assertEquals(LAYERS * 2 * 2 * 8 * 4, json.get("kv_bytes_per_token").asLong());
        for (int i = 0; i < LAYERS; i++) {
            assertEquals(java.util.List.of(LlamaOnnxExporter.pastKey(i), LlamaOnnxExporter.pastValue(i)),
                    new ObjectMapper().convertValue(json.get("kv").get(i).get("inputs"), java.util.List.class));
        }
    }

    @ParameterizedTest(name = "drop k={0}")
    @ValueSource(ints = {0, 1, 2, 3, 4})
    void dropMatchesTheReference(int k) {
        Path out = tmp.resolve("drop" + k + ".onnx");
        CliRun r = CliRun.of("optimize", wrappedFile.toString(), "-o", out.toString(), "--drop-attn", "--from-layer",
                Integer.toString(k));
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("ONNX local functions inlined (DecoderLayer x4, SelfAttention x4): the output is the flat graph"),
                r.out());
        ModelProto saved = OnnxModelIO.load(out).proto();
        assertFlat(saved);
        DecoderLayout before = LayoutDiscovery.discover(OnnxModelIO.load(wrappedFile).graph());
        DecoderLayout after = LayoutDiscovery.discoverToRun(new Graph(saved));
        assertEquals(before.kvBytesPerToken() * k, after.kvBytesPerToken() * LAYERS, "KV bytes fall by the dropped fraction");
        Set<Integer> dropped = new TreeSet<>();
        for (int i = k; i < LAYERS; i++) {
            dropped.add(i);
        }
        assertMatches("drop k=" + k, out, reference.logitsAllPositions(tokens, new Manipulation.Drop(dropped)));
    }

    @Test
    void freezeMatchesTheReference() {
        Path out = tmp.resolve("freeze.onnx");
        CliRun r = CliRun.of("optimize", wrappedFile.toString(), "-o", out.toString(), "--freeze", "--from-layer", "2",
                "--freeze-logits", "all");
        assertEquals(0, r.code(), r.err());
        assertFlat(OnnxModelIO.load(out).proto());
        float[][] expected = reference.logitsAllPositions(tokens, new Manipulation.SingleInputFreeze(2));
        try (DecoderSession s = DecoderSession.open(out, Device.CPU)) {
            var result = s.run(new long[][] {longs(tokens)}, new long[][] {ones(SEQ)}, new long[][] {range(SEQ)},
                    s.emptyCache(1));
            for (int t = 0; t < SEQ; t++) {
                assertClose("freeze pos " + t, expected[t], result.logits().at(0, t));
            }
            result.cache().close();
        }
    }

    @Test
    void randomMatchesTheReference() throws Exception {
        Path out = tmp.resolve("random.onnx");
        CliRun r = CliRun.of("optimize", wrappedFile.toString(), "-o", out.toString(), "--random-kv", "--from-layer", "2",
                "--noise-seed", "7", "--noise", "gaussian");
        assertEquals(0, r.code(), r.err());
        assertFlat(OnnxModelIO.load(out).proto());
        float[] expected = reference.logitsAllPositions(tokens, new Manipulation.Random(2, Noise.GAUSSIAN, 7))[SEQ - 1];
        int dim = weights.config.dim();
        float[] noise = new float[SEQ * dim];
        float[][] rows = NoiseDraw.gaussian(7, SEQ, dim);
        for (int t = 0; t < SEQ; t++) {
            System.arraycopy(rows[t], 0, noise, t * dim, dim);
        }
        try (DecoderSession s = DecoderSession.open(out, Device.CPU);
             OnnxTensor extra = OnnxTensor.createTensor(OrtSessionFactory.environment(), FloatBuffer.wrap(noise),
                     new long[] {1, SEQ, dim})) {
            var result = s.run(new long[][] {longs(tokens)}, new long[][] {ones(SEQ)}, new long[][] {range(SEQ)},
                    s.emptyCache(1), Map.of(RandomNoisePass.NOISE_INPUT, extra));
            assertClose("random", expected, result.logits().at(0, SEQ - 1));
            result.cache().close();
        }
    }

    /** The saved graph is the inlined one: no functions, no call of one, and the functions' domain is gone. */
    private static void assertFlat(ModelProto saved) {
        assertEquals(0, saved.getFunctionsCount());
        for (NodeProto n : saved.getGraph().getNodeList()) {
            assertTrue(!n.getDomain().equals(FunctionWrappedLayers.DOMAIN), n.getOpType());
        }
        assertTrue(saved.getOpsetImportList().stream().noneMatch(o -> o.getDomain().equals(FunctionWrappedLayers.DOMAIN)));
    }

    /** One prefill, then token by token with the cache. */
    private static void assertMatches(String what, Path graph, float[][] expected) {
        try (DecoderSession s = DecoderSession.open(graph, Device.CPU)) {
            var out = s.run(new long[][] {longs(tokens)}, new long[][] {ones(SEQ)}, new long[][] {range(SEQ)}, s.emptyCache(1));
            for (int t = 0; t < SEQ; t++) {
                assertClose(what + " prefill pos " + t, expected[t], out.logits().at(0, t));
            }
            out.cache().close();
            var cache = s.emptyCache(1);
            for (int t = 0; t < SEQ; t++) {
                var step = s.run(new long[][] {{tokens[t]}}, new long[][] {ones(t + 1)}, new long[][] {{t}}, cache);
                assertClose(what + " decode pos " + t, expected[t], step.logits().at(0, 0));
                cache = step.cache();
            }
            cache.close();
        }
    }

    private static float worst;

    @org.junit.jupiter.api.AfterAll
    static void printWorst() {
        System.out.printf("local-function layers: largest |delta| against the reference %.2e%n", worst);
    }

    private static void assertClose(String what, float[] expected, float[] actual) {
        float d = Deltas.maxAbsDelta(expected, actual);
        worst = Math.max(worst, d);
        assertTrue(d <= TOLERANCE, what + ": max |delta| " + d);
    }

    private static long[] longs(int[] a) {
        long[] o = new long[a.length];
        for (int i = 0; i < a.length; i++) {
            o[i] = a[i];
        }
        return o;
    }
}
