package org.attnskip.rewrite;

import ai.onnx.proto.OnnxMl.ModelProto;
import org.attnskip.CliRun;
import org.attnskip.Deltas;
import org.attnskip.OrtFeeds;
import org.attnskip.TestTokens;
import org.attnskip.export.ExportDtype;
import org.attnskip.export.LlamaOnnxExporter;
import org.attnskip.export.LlamaWeights;
import org.attnskip.export.TestLlamaWeights;
import org.attnskip.layout.DecoderLayout;
import org.attnskip.layout.LayoutDiscovery;
import org.attnskip.onnx.Graph;
import org.attnskip.onnx.OnnxModelIO;
import org.attnskip.reference.Manipulation;
import org.attnskip.reference.Noise;
import org.attnskip.reference.NoiseDraw;
import org.attnskip.runtime.OrtSessionFactory;
import ai.onnxruntime.OnnxTensor;
import java.nio.FloatBuffer;
import org.attnskip.reference.ReferenceLlama;
import org.attnskip.runtime.DecoderSession;
import org.attnskip.runtime.Device;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import java.util.Set;

import static org.attnskip.TestTokens.ones;
import static org.attnskip.TestTokens.range;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Activations quantized in ONNX Runtime's QDQ format ({@link ActivationQdq}: a QuantizeLinear ->
 * DequantizeLinear pair on everything a MatMul or an Add reads, the residual stream included).
 * Discovery walks through the pairs and finds what it finds on the float graph (the same layers,
 * the same stream values, caches and norms); drop's output runs with KV bytes down by exactly the
 * dropped fraction. The graph's numbers carry the quantization error, so they are held against
 * the reference with a stated bound per spelling, for the unmodified graph and for drop alike, and
 * the bound is far below what drop itself changes. random runs and is held to the same bound;
 * freeze refuses such graphs (exit 2): it re-projects K/V from a float stream and finds no float
 * projection reading the norm.
 */
class ActivationQdqTest {
    private static final int LAYERS = 4;
    private static final int SEQ = 12;

    @TempDir
    Path tmp;

    @ParameterizedTest
    @EnumSource(ActivationQdq.Spelling.class)
    void discoveryWalksThroughThePairsAndDropRuns(ActivationQdq.Spelling s) throws Exception {
        LlamaWeights w = TestLlamaWeights.random(TestLlamaWeights.config(32, 64, LAYERS, 4, 2, 71, 32, false), 5);
        ModelProto plain = LlamaOnnxExporter.export(w, ExportDtype.FLOAT);
        ModelProto quantized = ActivationQdq.insert(plain, s);
        DecoderLayout expected = LayoutDiscovery.discover(new Graph(plain));
        DecoderLayout l = LayoutDiscovery.discover(new Graph(quantized));
        assertEquals(LAYERS, l.numLayers());
        assertEquals(expected.kvBytesPerToken(), l.kvBytesPerToken());
        assertEquals(expected.logits(), l.logits());
        for (int i = 0; i < LAYERS; i++) {
            assertEquals(expected.layer(i).residualIn(), l.layer(i).residualIn(), "layer " + i + " stream");
            assertEquals(expected.layer(i).attention().normOutput(), l.layer(i).attention().normOutput(), "layer " + i + " norm");
            assertEquals(expected.layer(i).kv().inputs(), l.layer(i).kv().inputs());
            assertEquals(expected.layer(i).kv().outputs(), l.layer(i).kv().outputs());
            assertEquals(expected.layer(i).mlp().residualSum(), l.layer(i).mlp().residualSum(), "layer " + i + " MLP sum");
        }
        long pairs = quantized.getGraph().getNodeList().stream().filter(n -> n.getOpType().equals("QuantizeLinear")).count();
        assertTrue(pairs > 10 * LAYERS, pairs + " pairs");

        Path base = tmp.resolve("qdq.onnx");
        OnnxModelIO.save(quantized, null, base, false);
        Path out = tmp.resolve("drop.onnx");
        CliRun r = CliRun.of("optimize", base.toString(), "-o", out.toString(), "--drop-attn", "--from-layer", "2");
        assertEquals(0, r.code(), r.err());
        DecoderLayout after = LayoutDiscovery.discover(OnnxModelIO.load(out).graph());
        assertEquals(l.kvBytesPerToken() * 2, after.kvBytesPerToken() * LAYERS);

        ReferenceLlama ref = new ReferenceLlama(w);
        int[] tokens = TestTokens.tokens(71, SEQ, 9);
        float[][] none = ref.logitsAllPositions(tokens);
        float[][] dropped = ref.logitsAllPositions(tokens, new Manipulation.Drop(Set.of(2, 3)));
        float baseError = worst(base, none, tokens);
        float dropError = worst(out, dropped, tokens);
        float effect = 0;
        for (int t = 0; t < SEQ; t++) {
            effect = Math.max(effect, Deltas.maxAbsDelta(none[t], dropped[t]));
        }
        System.out.printf("activation QDQ %s: max |delta| vs reference %.2e unmodified, %.2e drop k=2; drop moves logits by %.2e%n",
                s, baseError, dropError, effect);
        if (!Float.isNaN(s.logitBound)) {
            assertTrue(baseError <= s.logitBound, "unmodified: " + baseError);
            assertTrue(dropError <= s.logitBound, "drop: " + dropError);
            assertTrue(effect > 100 * s.logitBound, "drop's effect " + effect + " stands out of the quantization error");
        }
        // exact whatever the rounding: the layers below k are untouched, so their present K/V are bit-identical
        Map<String, float[]> a = OrtFeeds.run(base, l, 3, 4, 5);
        Map<String, float[]> b = OrtFeeds.run(out, after, 3, 4, 5);
        for (int i = 0; i < 2; i++) {
            for (String present : l.layer(i).kv().outputs()) {
                assertArrayEquals(a.get(present), b.get(present), 0f, present);
            }
        }
        assertFalse(Arrays.equals(a.get(l.logits()), b.get(l.logits())), "drop changes the logits");

        // random runs too (held to the bound where there is one); freeze refuses, naming what it misses
        Path random = tmp.resolve("random.onnx");
        r = CliRun.of("optimize", base.toString(), "-o", random.toString(), "--random-kv", "--from-layer", "2",
                "--noise-seed", "7", "--noise", "gaussian");
        assertEquals(0, r.code(), r.err());
        float randomError = Deltas.maxAbsDelta(ref.logitsAllPositions(tokens, new Manipulation.Random(2, Noise.GAUSSIAN, 7))[SEQ - 1],
                lastLogitsWithNoise(random, tokens, w.config.dim(), 7));
        System.out.printf("activation QDQ %s: random k=2 max |delta| %.2e%n", s, randomError);
        if (!Float.isNaN(s.logitBound)) {
            assertTrue(randomError <= s.logitBound, "random: " + randomError);
        }
        r = CliRun.of("optimize", base.toString(), "-o", tmp.resolve("freeze.onnx").toString(), "--freeze", "--from-layer", "2");
        assertEquals(2, r.code(), r.out());
        assertTrue(r.err().contains("expected one K or V projection MatMul on the normalised stream"), r.err());
    }

    private static float[] lastLogitsWithNoise(Path graph, int[] tokens, int dim, long seed) throws Exception {
        float[] noise = new float[SEQ * dim];
        float[][] rows = NoiseDraw.gaussian(seed, SEQ, dim);
        for (int t = 0; t < SEQ; t++) {
            System.arraycopy(rows[t], 0, noise, t * dim, dim);
        }
        long[] ids = new long[SEQ];
        for (int t = 0; t < SEQ; t++) {
            ids[t] = tokens[t];
        }
        try (DecoderSession s = DecoderSession.open(graph, Device.CPU);
             OnnxTensor extra = OnnxTensor.createTensor(OrtSessionFactory.environment(), FloatBuffer.wrap(noise),
                     new long[] {1, SEQ, dim})) {
            var out = s.run(new long[][] {ids}, new long[][] {ones(SEQ)}, new long[][] {range(SEQ)}, s.emptyCache(1),
                    Map.of(RandomNoisePass.NOISE_INPUT, extra));
            out.cache().close();
            return out.logits().at(0, SEQ - 1);
        }
    }

    /** Largest logit difference over a prefill of the tokens and a token-by-token decode. */
    private static float worst(Path graph, float[][] expected, int[] tokens) {
        float worst = 0;
        try (DecoderSession s = DecoderSession.open(graph, Device.CPU)) {
            long[] ids = new long[tokens.length];
            for (int t = 0; t < tokens.length; t++) {
                ids[t] = tokens[t];
            }
            var out = s.run(new long[][] {ids}, new long[][] {ones(SEQ)}, new long[][] {range(SEQ)}, s.emptyCache(1));
            for (int t = 0; t < SEQ; t++) {
                worst = Math.max(worst, Deltas.maxAbsDelta(expected[t], out.logits().at(0, t)));
            }
            out.cache().close();
            var cache = s.emptyCache(1);
            for (int t = 0; t < SEQ; t++) {
                var step = s.run(new long[][] {{tokens[t]}}, new long[][] {ones(t + 1)}, new long[][] {{t}}, cache);
                worst = Math.max(worst, Deltas.maxAbsDelta(expected[t], step.logits().at(0, 0)));
                cache = step.cache();
            }
            cache.close();
        }
        return worst;
    }
}
