package org.attnskip.rewrite;

import ai.onnxruntime.OnnxTensor;
import org.attnskip.Fixtures;
import org.attnskip.export.ExportDtype;
import org.attnskip.export.GraphFlavour;
import org.attnskip.export.Llama2cCheckpoint;
import org.attnskip.export.LlamaOnnxExporter;
import org.attnskip.export.LlamaWeights;
import org.attnskip.export.TestLlamaWeights;
import org.attnskip.layout.DecoderLayout;
import org.attnskip.layout.LayoutDiscovery;
import org.attnskip.onnx.Graph;
import org.attnskip.onnx.GraphCheck;
import org.attnskip.onnx.OnnxModelIO;
import org.attnskip.reference.AffineMap;
import org.attnskip.reference.Manipulation;
import org.attnskip.reference.Noise;
import org.attnskip.reference.NoiseDraw;
import org.attnskip.reference.ReferenceLlama;
import org.attnskip.runtime.DecoderSession;
import org.attnskip.runtime.Device;
import org.attnskip.runtime.KvCache;
import org.attnskip.runtime.OrtSessionFactory;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.FloatBuffer;
import java.nio.LongBuffer;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.TreeSet;
import java.util.function.BiFunction;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The rewritten graph's logits equal the reference implementation with the same manipulation,
 * as one prefill and token by token with the KV cache: drop and freeze at k in {0, 1, L/2, L-1, L},
 * random (gaussian, angle, shuffle) with a fixed seed, calibrated drop (seeded maps, full rank at
 * k in {0, 1, L/2, L-1}, rank 3 on a non-contiguous set). Each model is exported in both graph
 * flavours; the fused graph decodes token by token with its cache updated in place (starting small,
 * so it is reallocated on the way) and with the growing cache, the static-cache graph through its
 * fixed buffers (it has no growing cache). Here freeze is checked on the unfused flavour and, in
 * freezeOnStaticCacheGraph, on the static one; GqaFreezeMatchesReferenceTest checks it on the fused one.
 */
class RewriteMatchesReferenceTest {
    private static final float TOLERANCE = 1e-4f;
    /** fp16 graphs against the fp32 reference: measured 2.9e-4 on the unmodified ortgenai-llama-fp16 graph. */
    private static final float FP16_TOLERANCE = 1e-3f;
    private float tolerance = TOLERANCE;
    private static final int SEQ = 24;

    @TempDir
    Path tmp;

    @ParameterizedTest
    @EnumSource(GraphFlavour.class)
    void stories260K(GraphFlavour flavour) throws Exception {
        // head size 8: the fused graph rotates q and k in RotaryEmbedding nodes before GroupQueryAttention
        check("stories260K", Llama2cCheckpoint.read(Fixtures.model("stories260K/stories260K.bin")), flavour);
    }

    @ParameterizedTest
    @EnumSource(GraphFlavour.class)
    void storiesDeep12(GraphFlavour flavour) throws Exception {
        // head size 16: GroupQueryAttention rotates q and k itself
        check("deep12", Llama2cCheckpoint.read(Fixtures.model("stories-deep12/stories-deep12.bin")), flavour);
    }

    @ParameterizedTest
    @EnumSource(GraphFlavour.class)
    void syntheticGroupedQueryWithBiases(GraphFlavour flavour) throws Exception {
        check("synthetic", TestLlamaWeights.random(TestLlamaWeights.config(48, 96, 6, 6, 2, 97, 64, false, true), 42), flavour);
    }

    /**
     * Single-input freeze (--freeze-kv single-input): the evaluation form at every position and the
     * deployable form at the last one, against the reference with the same flavour.
     */
    @ParameterizedTest
    @ValueSource(strings = {"stories260K", "deep12", "synthetic"})
    void singleInputFreeze(String name) throws Exception {
        LlamaWeights w = model(name);
        int L = w.config.layers();
        int[] tokens = tokens(w.config.vocabSize(), SEQ, name.hashCode());
        ReferenceLlama ref = new ReferenceLlama(w);
        Path base = tmp.resolve(name + ".onnx");
        OnnxModelIO.save(LlamaOnnxExporter.export(w, ExportDtype.FLOAT), null, base, false);
        for (int k : new TreeSet<>(List.of(0, 1, L / 2, L - 1, L))) {
            float[][] expected = ref.logitsAllPositions(tokens, new Manipulation.SingleInputFreeze(k));
            LayerSelection s = LayerSelection.fromLayer(k, L);
            compare(name + " single-input k=" + k, rewrite(base, (g, l) -> new SingleInputFreezePass(FreezeForm.EVALUATION).apply(g, l, s)),
                    expected, tokens);
            Path sliced = rewrite(base, (g, l) -> new SingleInputFreezePass(FreezeForm.DEPLOYABLE).apply(g, l, s));
            if (k < L) {
                compareLastPosition(name + " single-input-prefill k=" + k, sliced, expected, tokens);
            } else {
                compare(name + " single-input-prefill k=" + k, sliced, expected, tokens);
            }
        }
    }

    /**
     * ONNX Runtime GenAI's MultiHeadAttention graph (fp16, 2 layers, the shared ortgenai-llama-fp16):
     * deployable freeze of each flavour against the reference run on the graph's own weights, and
     * for single-input the evaluation form too. The unmodified graph is checked the same way first,
     * so that the weights are known to be read right.
     */
    @ParameterizedTest
    @ValueSource(strings = {"paper", "single-input"})
    void freezeOnMultiHeadAttentionGraph(String flavour) {
        Path base = Fixtures.model("ortgenai-llama-fp16/model.onnx");
        LlamaWeights w = OrtGenAiLlamaWeights.read(OnnxModelIO.load(base), 2, 1, 1, 1e-6f, 10000f);
        int L = w.config.layers();
        ReferenceLlama ref = new ReferenceLlama(w);
        int[] tokens = tokens(w.config.vocabSize(), SEQ, 11);
        tolerance = FP16_TOLERANCE;
        float[][] normal = ref.logitsAllPositions(tokens);
        compare("mha unmodified", base, normal, tokens);
        FreezeKv kv = FreezeKv.parse(flavour);
        for (int k = 0; k <= L; k++) {
            LayerSelection s = LayerSelection.fromLayer(k, L);
            float[][] expected = ref.logitsAllPositions(tokens, kv == FreezeKv.PAPER ? new Manipulation.Freeze(k)
                    : new Manipulation.SingleInputFreeze(k));
            Path deployable = rewrite(base, (g, l) -> kv.pass(FreezeForm.DEPLOYABLE).apply(g, l, s));
            if (k < L) {
                compareLastPosition("mha " + flavour + " k=" + k, deployable, expected, tokens);
            } else {
                compare("mha " + flavour + " k=" + k, deployable, expected, tokens);
            }
            if (kv == FreezeKv.SINGLE_INPUT) {
                compare("mha single-input-all k=" + k, rewrite(base, (g, l) -> kv.pass(FreezeForm.EVALUATION).apply(g, l, s)), expected, tokens);
            }
        }
        // freeze at 0 changes the model by more than the tolerance, so the comparisons above can fail
        float[] frozen = ref.logitsAllPositions(tokens, kv == FreezeKv.PAPER ? new Manipulation.Freeze(0)
                : new Manipulation.SingleInputFreeze(0))[SEQ - 1];
        float effect = org.attnskip.Deltas.maxAbsDelta(normal[SEQ - 1], frozen);
        System.out.printf("mha %s: freeze at 0 moves the last logits by %.3g%n", flavour, effect);
        assertTrue(effect > 5 * FP16_TOLERANCE, "freeze at 0 changes the last logits by only " + effect);
    }

    /**
     * The opset-24 static-cache graph: deployable freeze of each flavour writes the frozen K/V through
     * the layer's TensorScatter; the last-position logits match the reference with the same flavour,
     * after prefills of several lengths and token by token through the fixed buffers; single-input's
     * evaluation form (every position's logits) too.
     */
    @ParameterizedTest
    @CsvSource({"stories260K, paper", "stories260K, single-input", "synthetic, paper", "synthetic, single-input"})
    void freezeOnStaticCacheGraph(String model, String flavour) throws Exception {
        LlamaWeights w = model(model);
        int L = w.config.layers();
        ReferenceLlama ref = new ReferenceLlama(w);
        int[] tokens = tokens(w.config.vocabSize(), SEQ, 13);
        Path base = tmp.resolve(model + "-static.onnx");
        OnnxModelIO.save(GraphFlavour.STATIC.export(w, ExportDtype.FLOAT, null), null, base, false);
        FreezeKv kv = FreezeKv.parse(flavour);
        for (int k : new TreeSet<>(List.of(0, 1, L / 2, L - 1, L))) {
            LayerSelection s = LayerSelection.fromLayer(k, L);
            float[][] expected = ref.logitsAllPositions(tokens, kv == FreezeKv.PAPER ? new Manipulation.Freeze(k)
                    : new Manipulation.SingleInputFreeze(k));
            Path deployable = rewrite(base, (g, l) -> kv.pass(FreezeForm.DEPLOYABLE).apply(g, l, s));
            if (k < L) {
                compareLastPosition("static-" + flavour + " k=" + k, deployable, expected, tokens);
            } else {
                compare("static-" + flavour + " k=" + k, deployable, expected, tokens);
            }
            if (kv == FreezeKv.SINGLE_INPUT) {
                compare("static-single-input-all k=" + k, rewrite(base, (g, l) -> kv.pass(FreezeForm.EVALUATION).apply(g, l, s)), expected, tokens);
            }
        }
        // freeze at 0 changes the model by more than the tolerance, so the comparisons above can fail
        float effect = org.attnskip.Deltas.maxAbsDelta(ref.logitsAllPositions(tokens)[SEQ - 1],
                ref.logitsAllPositions(tokens, kv == FreezeKv.PAPER ? new Manipulation.Freeze(0)
                        : new Manipulation.SingleInputFreeze(0))[SEQ - 1]);
        assertTrue(effect > 100 * TOLERANCE, "freeze at 0 changes the last logits by only " + effect);
    }

    private static LlamaWeights model(String name) throws Exception {
        return switch (name) {
            case "stories260K" -> Llama2cCheckpoint.read(Fixtures.model("stories260K/stories260K.bin"));
            case "deep12" -> Llama2cCheckpoint.read(Fixtures.model("stories-deep12/stories-deep12.bin"));
            case "synthetic" -> TestLlamaWeights.random(TestLlamaWeights.config(48, 96, 6, 6, 2, 97, 64, false, true), 42);
            default -> throw new IllegalArgumentException(name);
        };
    }

    /** Biases on the packed q|k|v projection, then rotary inside GroupQueryAttention (head size 16). */
    @Test
    void syntheticFusedRotaryInsideAttentionWithBiases() throws Exception {
        check("synthetic16", TestLlamaWeights.random(TestLlamaWeights.config(64, 96, 4, 4, 2, 97, 64, false, true), 43),
                GraphFlavour.FUSED);
    }

    private void check(String model, LlamaWeights w, GraphFlavour flavour) throws Exception {
        String name = model + "/" + flavour.cliName();
        int L = w.config.layers();
        int[] tokens = tokens(w.config.vocabSize(), SEQ, model.hashCode());
        ReferenceLlama ref = new ReferenceLlama(w);
        Path base = tmp.resolve(model + "-" + flavour.cliName() + ".onnx");
        OnnxModelIO.save(flavour.export(w, ExportDtype.FLOAT, null), null, base, false);

        for (int k : new TreeSet<>(List.of(0, 1, L / 2, L - 1, L))) {
            Set<Integer> dropped = new TreeSet<>(LayerSelection.fromLayer(k, L).layers());
            compare(name + " drop k=" + k, rewrite(base, (g, l) -> new DropAttentionPass(128).apply(g, l, LayerSelection.fromLayer(k, L))),
                    ref.logitsAllPositions(tokens, new Manipulation.Drop(dropped)), tokens);
            if (flavour != GraphFlavour.UNFUSED) {
                continue;
            }
            float[][] frozen = ref.logitsAllPositions(tokens, new Manipulation.Freeze(k));
            compare(name + " freeze k=" + k, rewrite(base, (g, l) -> new PaperFreezeEvaluationPass().apply(g, l, LayerSelection.fromLayer(k, L))),
                    frozen, tokens);
            Path sliced = rewrite(base, (g, l) -> new PaperFreezeDeployablePass().apply(g, l, LayerSelection.fromLayer(k, L)));
            if (k < L) {
                compareLastPosition(name + " freeze-prefill k=" + k, sliced, frozen, tokens);
            } else {
                compare(name + " freeze-prefill k=" + k, sliced, frozen, tokens); // nothing to freeze: unchanged graph
            }
        }
        // calibrated drop: full-rank maps at every k, a rank-3 map on a non-contiguous set
        for (int k : new TreeSet<>(List.of(0, 1, L / 2, L - 1))) {
            LayerSelection selection = LayerSelection.fromLayer(k, L);
            Map<Integer, AffineMap> maps = randomMaps(selection.layers(), w.config.dim(), 0, k);
            compare(name + " compensated k=" + k, rewrite(base, (g, l) -> new CompensatedDropPass(maps, 128).apply(g, l, selection)),
                    ref.logitsAllPositions(tokens, new Manipulation.CompensatedDrop(maps)), tokens);
        }
        LayerSelection someLayers = LayerSelection.fromList("0," + (L - 2), L);
        Map<Integer, AffineMap> lowRank = randomMaps(someLayers.layers(), w.config.dim(), 3, 99);
        compare(name + " compensated-rank3 0," + (L - 2),
                rewrite(base, (g, l) -> new CompensatedDropPass(lowRank, 128).apply(g, l, someLayers)),
                ref.logitsAllPositions(tokens, new Manipulation.CompensatedDrop(lowRank)), tokens);
        // a non-contiguous set, as --drop-attn-layers and the probe's recommendation produce
        String list = "1," + (L - 2);
        compare(name + " drop-list " + list, rewrite(base, (g, l) -> new DropAttentionPass(128).apply(g, l, LayerSelection.fromList(list, L))),
                ref.logitsAllPositions(tokens, new Manipulation.Drop(Set.of(1, L - 2))), tokens);
        int k = L / 2;
        long seed = 7;
        Map<String, Noise> noises = Map.of("gaussian", Noise.GAUSSIAN, "angle:30", Noise.angle(30), "shuffle", Noise.SHUFFLE);
        for (var e : noises.entrySet()) {
            Path graph = rewrite(base, (g, l) -> new RandomNoisePass(Noise.parse(e.getKey())).apply(g, l, LayerSelection.fromLayer(k, L)));
            float[] expected = ref.logitsAllPositions(tokens, new Manipulation.Random(k, e.getValue(), seed))[SEQ - 1];
            float[] actual = lastLogitsWithNoise(graph, tokens, w.config.dim(), e.getValue(), seed);
            assertClose(name + " random " + e.getKey(), expected, actual);
        }
    }

    private Path rewrite(Path base, BiFunction<Graph, DecoderLayout, ChangeReport> pass) {
        var loaded = OnnxModelIO.load(base);
        Graph g = loaded.graph();
        pass.apply(g, LayoutDiscovery.discover(g));
        Path out = tmp.resolve("rewritten-" + System.nanoTime() + ".onnx");
        var model = g.toModel();
        GraphCheck.requireWellFormed(model.getGraph(), loaded.proto().getGraph(), "the rewritten graph"); // what Rewrite checks before it saves
        OnnxModelIO.save(loaded, model, out);
        return out;
    }

    /**
     * One prefill of the whole sequence, then the same sequence token by token with the cache: the
     * session's own (in place where the graph allows it, from a capacity of 5 so that it grows twice
     * on the way) and, when that is in place, also the growing cache.
     */
    private void compare(String what, Path graph, float[][] expected, int[] tokens) {
        try (DecoderSession s = DecoderSession.open(graph, Device.CPU)) {
            var out = s.run(new long[][] {longs(tokens, 0, tokens.length)}, new long[][] {ones(tokens.length)},
                    new long[][] {range(0, tokens.length)}, s.emptyCache(1));
            for (int t = 0; t < tokens.length; t++) {
                assertClose(what + " prefill pos " + t, expected[t], out.logits().at(0, t));
            }
            out.cache().close();
            decodeTokenByToken(what + " cached", s, s.emptyCache(1, 5), expected, tokens);
            if (s.updatesCacheInPlace()) {
                decodeTokenByToken(what + " concat-cached", s, s.growingCache(1), expected, tokens);
            }
        }
    }

    private void decodeTokenByToken(String what, DecoderSession s, KvCache cache, float[][] expected, int[] tokens) {
        for (int t = 0; t < tokens.length; t++) {
            var step = s.run(new long[][] {{tokens[t]}}, new long[][] {ones(t + 1)}, new long[][] {{t}}, cache);
            assertClose(what + " pos " + t, expected[t], step.logits().at(0, 0));
            cache = step.cache();
        }
        cache.close();
    }

    /**
     * A graph that outputs the last position only: a prefill of every prefix length from an empty
     * cache, and a prefill of half the sequence followed by token-by-token decoding.
     */
    private void compareLastPosition(String what, Path graph, float[][] expected, int[] tokens) {
        try (DecoderSession s = DecoderSession.open(graph, Device.CPU)) {
            for (int n : new int[] {1, 2, tokens.length / 2, tokens.length}) {
                var out = s.run(new long[][] {longs(tokens, 0, n)}, new long[][] {ones(n)}, new long[][] {range(0, n)},
                        s.emptyCache(1));
                assertTrue(out.logits().seq() == 1, "one position of logits");
                assertClose(what + " prefill of " + n, expected[n - 1], out.logits().at(0, 0));
                out.cache().close();
            }
            int half = tokens.length / 2;
            var out = s.run(new long[][] {longs(tokens, 0, half)}, new long[][] {ones(half)}, new long[][] {range(0, half)},
                    s.emptyCache(1));
            var cache = out.cache();
            for (int t = half; t < tokens.length; t++) {
                var step = s.run(new long[][] {{tokens[t]}}, new long[][] {ones(t + 1)}, new long[][] {{t}}, cache);
                assertClose(what + " decode pos " + t, expected[t], step.logits().at(0, 0));
                cache = step.cache();
            }
            cache.close();
        }
    }

    /** A full-sequence pass with an empty past, feeding the noise NoiseDraw makes for the seed. */
    private float[] lastLogitsWithNoise(Path graph, int[] tokens, int dim, Noise noise, long seed) throws Exception {
        var env = OrtSessionFactory.environment();
        int S = tokens.length;
        OnnxTensor extra;
        if (noise instanceof Noise.Shuffle) {
            long[] perm = new long[S * dim];
            int[][] rows = NoiseDraw.permutations(seed, S, dim);
            for (int t = 0; t < S; t++) {
                for (int j = 0; j < dim; j++) {
                    perm[t * dim + j] = rows[t][j];
                }
            }
            extra = OnnxTensor.createTensor(env, LongBuffer.wrap(perm), new long[] {1, S, dim});
        } else {
            float[] n = new float[S * dim];
            float[][] rows = NoiseDraw.gaussian(seed, S, dim);
            for (int t = 0; t < S; t++) {
                System.arraycopy(rows[t], 0, n, t * dim, dim);
            }
            extra = OnnxTensor.createTensor(env, FloatBuffer.wrap(n), new long[] {1, S, dim});
        }
        String input = noise instanceof Noise.Shuffle ? RandomNoisePass.PERMUTATION_INPUT : RandomNoisePass.NOISE_INPUT;
        try (DecoderSession s = DecoderSession.open(graph, Device.CPU); extra) {
            var out = s.run(new long[][] {longs(tokens, 0, S)}, new long[][] {ones(S)}, new long[][] {range(0, S)},
                    s.emptyCache(1), Map.of(input, extra));
            out.cache().close();
            return out.logits().at(0, S - 1);
        }
    }

    /** Largest difference seen per model and mode, printed for the record. */
    private static final Map<String, Float> WORST = new java.util.TreeMap<>();

    @org.junit.jupiter.api.AfterAll
    static void printWorst() {
        WORST.forEach((k, v) -> System.out.printf("max |delta| %-22s %.2e%n", k, v));
    }

    private void assertClose(String what, float[] expected, float[] actual) {
        float max = 0;
        for (int i = 0; i < expected.length; i++) {
            max = Math.max(max, Math.abs(expected[i] - actual[i]));
        }
        float m = max;
        String[] words = what.split(" ");
        WORST.merge(words[0] + " " + words[1], m, Math::max);
        assertTrue(m <= tolerance, () -> what + ": max |delta| = " + m);
    }

    /** Seeded maps of about the size of an attention branch; rank 0 means full rank. */
    private static Map<Integer, AffineMap> randomMaps(Set<Integer> layers, int dim, int rank, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        Map<Integer, AffineMap> maps = new java.util.HashMap<>();
        for (int layer : layers) {
            int width = rank == 0 ? dim : rank;
            float[] first = gaussian(r, dim * width, 0.3 / Math.sqrt(dim));
            float[] second = rank == 0 ? null : gaussian(r, width * dim, 0.3 / Math.sqrt(width));
            maps.put(layer, new AffineMap(dim, first, second, gaussian(r, dim, 0.1)));
        }
        return maps;
    }

    private static float[] gaussian(SplittableRandom r, int n, double scale) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            // Box-Muller from two uniforms
            v[i] = (float) (scale * Math.sqrt(-2 * Math.log(1 - r.nextDouble())) * Math.cos(2 * Math.PI * r.nextDouble()));
        }
        return v;
    }

    private static int[] tokens(int vocab, int n, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        int[] t = new int[n];
        t[0] = 1;
        for (int i = 1; i < n; i++) {
            t[i] = r.nextInt(3, vocab);
        }
        return t;
    }

    private static long[] longs(int[] a, int from, int to) {
        long[] out = new long[to - from];
        for (int i = from; i < to; i++) {
            out[i - from] = a[i];
        }
        return out;
    }

    private static long[] ones(int n) {
        long[] o = new long[n];
        java.util.Arrays.fill(o, 1);
        return o;
    }

    private static long[] range(int from, int to) {
        long[] o = new long[to - from];
        for (int i = from; i < to; i++) {
            o[i - from] = i;
        }
        return o;
    }
}
