package org.attnskip.rewrite;

import ai.onnxruntime.OnnxTensor;
import org.attnskip.Deltas;
import org.attnskip.Fixtures;
import org.attnskip.export.ExportDtype;
import org.attnskip.export.GraphFlavour;
import org.attnskip.export.Llama2cCheckpoint;
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
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.FloatBuffer;
import java.nio.LongBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.BiFunction;

import org.attnskip.TestTokens;
import static org.attnskip.TestTokens.ones;
import static org.junit.jupiter.api.Assertions.assertEquals;
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
 * Every model x flavour x manipulation x k is its own case, so one failure does not hide the others;
 * weights, exports and reference logits are cached across cases.
 */
class RewriteMatchesReferenceTest {
    private static final float TOLERANCE = 1e-4f;
    /** fp16 graphs against the fp32 reference: measured 2.9e-4 on the unmodified ortgenai-llama-fp16 graph. */
    private static final float FP16_TOLERANCE = 1e-3f;
    private float tolerance = TOLERANCE;
    private static final int SEQ = 24;
    /** The random-noise cases' seed and their noises, by the name the CLI parses. */
    private static final long NOISE_SEED = 7;
    private static final Map<String, Noise> NOISES = Map.of("gaussian", Noise.GAUSSIAN, "angle:30", Noise.angle(30), "shuffle", Noise.SHUFFLE);

    /** Shared by every case, so that each model is read and exported once per flavour, not once per case. */
    @TempDir
    static Path tmp;
    private static final Map<String, LlamaWeights> WEIGHTS = new ConcurrentHashMap<>();
    private static final Map<String, ReferenceLlama> REFERENCES = new ConcurrentHashMap<>();
    private static final Map<String, Path> EXPORTS = new ConcurrentHashMap<>();
    /** Reference logits by model, token seed and manipulation, as freeze and freeze-prefill compare with the same ones. */
    private static final Map<String, float[][]> EXPECTED = new ConcurrentHashMap<>();

    /**
     * One case: a model, a graph flavour (none where the test fixes it), a manipulation and the layer
     * it starts at (-1 where the test derives it). Its name is the display name, e.g. "stories260K fused drop k=2".
     */
    record Case(String model, GraphFlavour flavour, String manipulation, int k) {
        @Override
        public String toString() {
            List<String> words = new ArrayList<>(List.of(model));
            if (flavour != null) {
                words.add(flavour.cliName());
            }
            if (!manipulation.isEmpty()) {
                words.add(manipulation);
            }
            if (k >= 0) {
                words.add("k=" + k);
            }
            return String.join(" ", words);
        }

        /** The prefix of every assertion message, as the table of largest deltas groups them. */
        String what() {
            return model + "/" + flavour.cliName() + " " + manipulation;
        }
    }

    // The models exported in every flavour (head sizes 8 and 16, and a synthetic grouped-query model with
    // biases), and one only in the fused flavour: biases on the packed q|k|v, rotary inside GroupQueryAttention.
    private static final List<String> ALL_FLAVOUR_MODELS = List.of("stories260K", "deep12", "synthetic");

    private static List<Case> perFlavour(String manipulation, Set<GraphFlavour> flavours,
                                         java.util.function.IntFunction<Set<Integer>> ks) {
        List<Case> cases = new ArrayList<>();
        for (String model : List.of("stories260K", "deep12", "synthetic", "synthetic16")) {
            for (GraphFlavour flavour : GraphFlavour.values()) {
                if (!flavours.contains(flavour) || (model.equals("synthetic16") && flavour != GraphFlavour.FUSED)) {
                    continue;
                }
                for (int k : ks.apply(layersOrMissing(model))) {
                    cases.add(new Case(model, flavour, manipulation, k));
                }
            }
        }
        return cases;
    }

    /** k in {0, 1, L/2, L-1, L}, without repeats. */
    private static Set<Integer> everyK(int L) {
        return new TreeSet<>(List.of(0, 1, L / 2, L - 1, L));
    }

    /** k in {0, 1, L/2, L-1}: calibrated drop at L drops nothing. */
    private static Set<Integer> everyKBelowL(int L) {
        return new TreeSet<>(List.of(0, 1, L / 2, L - 1));
    }

    /**
     * The number of layers, for the case lists; a missing fixture gives one case (L = 1, k = 0), which
     * is then skipped with the fixture's message when it reads the model.
     */
    private static int layersOrMissing(String model) {
        String file = fixtureFile(model);
        if (file != null && !java.nio.file.Files.exists(Fixtures.root().resolve("models/" + file))) {
            return 1;
        }
        return weights(model).config.layers();
    }

    static List<Case> dropCases() {
        return perFlavour("drop", EnumSet.allOf(GraphFlavour.class), RewriteMatchesReferenceTest::everyK);
    }

    static List<Case> freezeCases() {
        return perFlavour("freeze", EnumSet.of(GraphFlavour.UNFUSED), RewriteMatchesReferenceTest::everyK);
    }

    static List<Case> freezePrefillCases() {
        return perFlavour("freeze-prefill", EnumSet.of(GraphFlavour.UNFUSED), RewriteMatchesReferenceTest::everyK);
    }

    static List<Case> compensatedCases() {
        return perFlavour("compensated", EnumSet.allOf(GraphFlavour.class), RewriteMatchesReferenceTest::everyKBelowL);
    }

    static List<Case> oncePerModelAndFlavour() {
        return perFlavour("", EnumSet.allOf(GraphFlavour.class), L -> Set.of(-1));
    }

    static List<Case> randomCases() {
        List<Case> cases = new ArrayList<>();
        for (Case c : oncePerModelAndFlavour()) {
            for (String noise : new TreeSet<>(NOISES.keySet())) {
                cases.add(new Case(c.model(), c.flavour(), "random " + noise, -1));
            }
        }
        return cases;
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("dropCases")
    void drop(Case c) throws Exception {
        LlamaWeights w = weights(c.model());
        int L = w.config.layers();
        Set<Integer> dropped = new TreeSet<>(LayerSelection.fromLayer(c.k(), L).layers());
        compare(c.what() + " k=" + c.k(), rewrite(export(c.model(), c.flavour()),
                        (g, l) -> new DropAttentionPass(128).apply(g, l, LayerSelection.fromLayer(c.k(), L))),
                reference(c.model()).logitsAllPositions(tokens(c.model()), new Manipulation.Drop(dropped)), tokens(c.model()));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("freezeCases")
    void freeze(Case c) throws Exception {
        int L = weights(c.model()).config.layers();
        compare(c.what() + " k=" + c.k(), rewrite(export(c.model(), c.flavour()),
                        (g, l) -> new PaperFreezeEvaluationPass().apply(g, l, LayerSelection.fromLayer(c.k(), L))),
                expected(c.model(), c.model().hashCode(), new Manipulation.Freeze(c.k())), tokens(c.model()));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("freezePrefillCases")
    void freezePrefill(Case c) throws Exception {
        int L = weights(c.model()).config.layers();
        Path sliced = rewrite(export(c.model(), c.flavour()),
                (g, l) -> new PaperFreezeDeployablePass().apply(g, l, LayerSelection.fromLayer(c.k(), L)));
        float[][] frozen = expected(c.model(), c.model().hashCode(), new Manipulation.Freeze(c.k()));
        if (c.k() < L) {
            compareLastPosition(c.what() + " k=" + c.k(), sliced, frozen, tokens(c.model()));
        } else {
            compare(c.what() + " k=" + c.k(), sliced, frozen, tokens(c.model())); // nothing to freeze: unchanged graph
        }
    }

    /** Calibrated drop with full-rank maps. */
    @ParameterizedTest(name = "{0}")
    @MethodSource("compensatedCases")
    void compensated(Case c) throws Exception {
        LlamaWeights w = weights(c.model());
        LayerSelection selection = LayerSelection.fromLayer(c.k(), w.config.layers());
        Map<Integer, AffineMap> maps = randomMaps(selection.layers(), w.config.dim(), 0, c.k());
        compare(c.what() + " k=" + c.k(), rewrite(export(c.model(), c.flavour()),
                        (g, l) -> new CompensatedDropPass(maps, 128).apply(g, l, selection)),
                reference(c.model()).logitsAllPositions(tokens(c.model()), new Manipulation.CompensatedDrop(maps)), tokens(c.model()));
    }

    /** Calibrated drop with a rank-3 map on a non-contiguous set. */
    @ParameterizedTest(name = "{0} compensated-rank3")
    @MethodSource("oncePerModelAndFlavour")
    void compensatedRank3(Case c) throws Exception {
        LlamaWeights w = weights(c.model());
        int L = w.config.layers();
        LayerSelection someLayers = LayerSelection.fromList("0," + (L - 2), L);
        Map<Integer, AffineMap> lowRank = randomMaps(someLayers.layers(), w.config.dim(), 3, 99);
        compare(c.what() + "compensated-rank3 0," + (L - 2), rewrite(export(c.model(), c.flavour()),
                        (g, l) -> new CompensatedDropPass(lowRank, 128).apply(g, l, someLayers)),
                reference(c.model()).logitsAllPositions(tokens(c.model()), new Manipulation.CompensatedDrop(lowRank)), tokens(c.model()));
    }

    /** A non-contiguous set, as --drop-attn-layers and the probe's recommendation produce. */
    @ParameterizedTest(name = "{0} drop-list")
    @MethodSource("oncePerModelAndFlavour")
    void dropList(Case c) throws Exception {
        int L = weights(c.model()).config.layers();
        String list = "1," + (L - 2);
        compare(c.what() + "drop-list " + list, rewrite(export(c.model(), c.flavour()),
                        (g, l) -> new DropAttentionPass(128).apply(g, l, LayerSelection.fromList(list, L))),
                reference(c.model()).logitsAllPositions(tokens(c.model()), new Manipulation.Drop(Set.of(1, L - 2))), tokens(c.model()));
    }

    /** Random attention above L/2 with a fixed seed: the last position of one full-sequence pass. */
    @ParameterizedTest(name = "{0}")
    @MethodSource("randomCases")
    void random(Case c) throws Exception {
        LlamaWeights w = weights(c.model());
        int L = w.config.layers();
        int k = L / 2;
        String noiseName = c.manipulation().substring("random ".length());
        Noise noise = NOISES.get(noiseName);
        Path graph = rewrite(export(c.model(), c.flavour()),
                (g, l) -> new RandomNoisePass(Noise.parse(noiseName)).apply(g, l, LayerSelection.fromLayer(k, L)));
        float[] expected = reference(c.model()).logitsAllPositions(tokens(c.model()), new Manipulation.Random(k, noise, NOISE_SEED))[SEQ - 1];
        float[] actual = lastLogitsWithNoise(graph, tokens(c.model()), w.config.dim(), noise, NOISE_SEED);
        COMPARISONS.incrementAndGet();
        assertClose(c.what(), expected, actual);
    }

    static List<Case> singleInputCases() {
        List<Case> cases = new ArrayList<>();
        for (String model : ALL_FLAVOUR_MODELS) {
            for (int k : everyK(layersOrMissing(model))) {
                cases.add(new Case(model, null, "single-input", k));
            }
        }
        return cases;
    }

    /**
     * Single-input freeze (--freeze-kv single-input): the evaluation form at every position and the
     * deployable form at the last one, against the reference with the same flavour.
     */
    @ParameterizedTest(name = "{0}")
    @MethodSource("singleInputCases")
    void singleInputFreeze(Case c) throws Exception {
        String name = c.model();
        int k = c.k();
        int L = weights(name).config.layers();
        int[] tokens = tokens(name);
        Path base = export(name, GraphFlavour.UNFUSED); // LlamaOnnxExporter's export, shared with the other unfused cases
        float[][] expected = expected(name, name.hashCode(), new Manipulation.SingleInputFreeze(k));
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

    private static final int MHA_LAYERS = 2;

    private static LlamaWeights mhaWeights() {
        return WEIGHTS.computeIfAbsent("mha", n -> OrtGenAiLlamaWeights.read(
                OnnxModelIO.load(Fixtures.model("ortgenai-llama-fp16/model.onnx")), MHA_LAYERS, 1, 1, 1e-6f, 10000f));
    }

    static List<Case> mhaCases() {
        List<Case> cases = new ArrayList<>();
        for (String flavour : List.of("paper", "single-input")) {
            for (int k = 0; k <= MHA_LAYERS; k++) {
                cases.add(new Case("mha", null, flavour, k));
            }
        }
        return cases;
    }

    /**
     * ONNX Runtime GenAI's MultiHeadAttention graph (fp16, 2 layers, the shared ortgenai-llama-fp16),
     * unmodified: checked first, so that the weights are known to be read right.
     */
    @Test
    void multiHeadAttentionGraphUnmodified() {
        Path base = Fixtures.model("ortgenai-llama-fp16/model.onnx");
        LlamaWeights w = mhaWeights();
        tolerance = FP16_TOLERANCE;
        compare("mha unmodified", base, new ReferenceLlama(w).logitsAllPositions(TestTokens.tokens(w.config.vocabSize(), SEQ, 11)),
                TestTokens.tokens(w.config.vocabSize(), SEQ, 11));
    }

    /**
     * The same graph: deployable freeze of each flavour against the reference run on the graph's own
     * weights, and for single-input the evaluation form too.
     */
    @ParameterizedTest(name = "{0}")
    @MethodSource("mhaCases")
    void freezeOnMultiHeadAttentionGraph(Case c) {
        Path base = Fixtures.model("ortgenai-llama-fp16/model.onnx");
        LlamaWeights w = mhaWeights();
        int L = w.config.layers();
        assertEquals(MHA_LAYERS, L, "layers read from the graph");
        ReferenceLlama ref = new ReferenceLlama(w);
        int[] tokens = TestTokens.tokens(w.config.vocabSize(), SEQ, 11);
        tolerance = FP16_TOLERANCE;
        String flavour = c.manipulation();
        int k = c.k();
        FreezeKv kv = FreezeKv.parse(flavour);
        LayerSelection s = LayerSelection.fromLayer(k, L);
        float[][] expected = ref.logitsAllPositions(tokens, kv == FreezeKv.PAPER ? new Manipulation.Freeze(k)
                : new Manipulation.SingleInputFreeze(k));
        compareBothFreezeForms("mha", base, kv, s, L, expected, tokens);
    }

    /** Freeze at 0 changes the fp16 model by more than the tolerance, so the comparisons above can fail. */
    @ParameterizedTest
    @ValueSource(strings = {"paper", "single-input"})
    void freezeOnMultiHeadAttentionGraphIsVisible(String flavour) {
        LlamaWeights w = mhaWeights();
        ReferenceLlama ref = new ReferenceLlama(w);
        int[] tokens = TestTokens.tokens(w.config.vocabSize(), SEQ, 11);
        FreezeKv kv = FreezeKv.parse(flavour);
        float[] normal = ref.logitsAllPositions(tokens)[SEQ - 1];
        float[] frozen = ref.logitsAllPositions(tokens, kv == FreezeKv.PAPER ? new Manipulation.Freeze(0)
                : new Manipulation.SingleInputFreeze(0))[SEQ - 1];
        float effect = Deltas.maxAbsDelta(normal, frozen);
        System.out.printf("mha %s: freeze at 0 moves the last logits by %.3g%n", flavour, effect);
        assertTrue(effect > 5 * FP16_TOLERANCE, "freeze at 0 changes the last logits by only " + effect);
    }

    static List<Case> staticCases() {
        List<Case> cases = new ArrayList<>();
        for (String model : List.of("stories260K", "synthetic")) {
            for (String flavour : List.of("paper", "single-input")) {
                for (int k : everyK(layersOrMissing(model))) {
                    cases.add(new Case(model, GraphFlavour.STATIC, flavour, k));
                }
            }
        }
        return cases;
    }

    /**
     * The opset-24 static-cache graph: deployable freeze of each flavour writes the frozen K/V through
     * the layer's TensorScatter; the last-position logits match the reference with the same flavour,
     * after prefills of several lengths and token by token through the fixed buffers; single-input's
     * evaluation form (every position's logits) too.
     */
    @ParameterizedTest(name = "{0}")
    @MethodSource("staticCases")
    void freezeOnStaticCacheGraph(Case c) throws Exception {
        String model = c.model();
        String flavour = c.manipulation();
        int k = c.k();
        int L = weights(model).config.layers();
        int[] tokens = TestTokens.tokens(weights(model).config.vocabSize(), SEQ, 13);
        Path base = export(model, GraphFlavour.STATIC);
        FreezeKv kv = FreezeKv.parse(flavour);
        LayerSelection s = LayerSelection.fromLayer(k, L);
        float[][] expected = expected(model, 13, kv == FreezeKv.PAPER ? new Manipulation.Freeze(k)
                : new Manipulation.SingleInputFreeze(k));
        compareBothFreezeForms("static", base, kv, s, L, expected, tokens);
    }

    /** Freeze at 0 changes the model by more than the tolerance, so the static-cache comparisons can fail. */
    @ParameterizedTest
    @CsvSource({"stories260K, paper", "stories260K, single-input", "synthetic, paper", "synthetic, single-input"})
    void freezeOnStaticCacheGraphIsVisible(String model, String flavour) throws Exception {
        FreezeKv kv = FreezeKv.parse(flavour);
        int[] tokens = TestTokens.tokens(weights(model).config.vocabSize(), SEQ, 13);
        float effect = Deltas.maxAbsDelta(reference(model).logitsAllPositions(tokens)[SEQ - 1],
                expected(model, 13, kv == FreezeKv.PAPER ? new Manipulation.Freeze(0)
                        : new Manipulation.SingleInputFreeze(0))[SEQ - 1]);
        assertTrue(effect > 100 * TOLERANCE, "freeze at 0 changes the last logits by only " + effect);
    }

    private static String fixtureFile(String name) {
        return switch (name) {
            case "stories260K" -> "stories260K/stories260K.bin";
            case "deep12" -> "stories-deep12/stories-deep12.bin";
            default -> null;
        };
    }

    /** The model's weights, read once; a missing fixture skips the calling case. */
    private static LlamaWeights weights(String name) {
        String file = fixtureFile(name);
        if (file != null) {
            Fixtures.model(file); // skips with the fixture's message before the cache is touched
        }
        return WEIGHTS.computeIfAbsent(name, n -> {
            try {
                return switch (n) {
                    case "stories260K", "deep12" -> Llama2cCheckpoint.read(Fixtures.model(file));
                    case "synthetic" -> TestLlamaWeights.random(TestLlamaWeights.config(48, 96, 6, 6, 2, 97, 64, false, true), 42);
                    case "synthetic16" -> TestLlamaWeights.random(TestLlamaWeights.config(64, 96, 4, 4, 2, 97, 64, false, true), 43);
                    default -> throw new IllegalArgumentException(n);
                };
            } catch (Exception e) {
                throw new IllegalStateException("reading " + n, e);
            }
        });
    }

    private static ReferenceLlama reference(String name) {
        LlamaWeights w = weights(name);
        return REFERENCES.computeIfAbsent(name, n -> new ReferenceLlama(w));
    }

    /** The tokens the model's drop, freeze, calibrated and random cases feed. */
    private static int[] tokens(String model) {
        return TestTokens.tokens(weights(model).config.vocabSize(), SEQ, model.hashCode());
    }

    /** The reference's logits at every position for the model, tokens from the seed and the manipulation, computed once. */
    private static float[][] expected(String model, long tokenSeed, Manipulation m) {
        int[] tokens = TestTokens.tokens(weights(model).config.vocabSize(), SEQ, tokenSeed);
        return EXPECTED.computeIfAbsent(model + " " + tokenSeed + " " + m,
                key -> reference(model).logitsAllPositions(tokens, m));
    }

    /** The model exported in the flavour, once for all cases. */
    private static Path export(String model, GraphFlavour flavour) {
        LlamaWeights w = weights(model);
        return EXPORTS.computeIfAbsent(model + "-" + flavour.cliName(), key -> {
            Path base = tmp.resolve(key + ".onnx");
            OnnxModelIO.save(flavour.export(w, ExportDtype.FLOAT, null), null, base, false);
            return base;
        });
    }

    private static Path rewrite(Path base, BiFunction<Graph, DecoderLayout, ChangeReport> pass) {
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
        COMPARISONS.incrementAndGet();
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
        COMPARISONS.incrementAndGet();
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
    /** Graph-vs-reference comparisons run (compare, compareLastPosition, random), so that a refactoring can count them. */
    private static final java.util.concurrent.atomic.AtomicInteger COMPARISONS = new java.util.concurrent.atomic.AtomicInteger();
    private static final Map<String, Float> WORST = new java.util.TreeMap<>();

    @org.junit.jupiter.api.AfterAll
    static void printWorst() {
        System.out.println("graph-vs-reference comparisons run: " + COMPARISONS.get());
        WORST.forEach((k, v) -> System.out.printf("max |delta| %-22s %.2e%n", k, v));
    }

    private void assertClose(String what, float[] expected, float[] actual) {
        float m = Deltas.maxAbsDelta(expected, actual);
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

    private static long[] longs(int[] a, int from, int to) {
        long[] out = new long[to - from];
        for (int i = from; i < to; i++) {
            out[i - from] = a[i];
        }
        return out;
    }

    private static long[] range(int from, int to) {
        long[] o = new long[to - from];
        for (int i = from; i < to; i++) {
            o[i - from] = i;
        }
        return o;
    }

    /**
     * The deployable form's last position (every position at k = L, where nothing is frozen) and, for
     * single-input, the evaluation form's every position, against the reference's freeze logits.
     */
    private void compareBothFreezeForms(String graph, Path base, FreezeKv kv, LayerSelection s, int L, float[][] expected,
                                        int[] tokens) {
        int k = s.firstLayer();
        String label = graph + " " + kv + " k=" + k;
        Path deployable = rewrite(base, (g, l) -> kv.pass(FreezeForm.DEPLOYABLE).apply(g, l, s));
        if (k < L) {
            compareLastPosition(label, deployable, expected, tokens);
        } else {
            compare(label, deployable, expected, tokens);
        }
        if (kv == FreezeKv.SINGLE_INPUT) {
            compare(graph + " single-input-all k=" + k, rewrite(base, (g, l) -> kv.pass(FreezeForm.EVALUATION).apply(g, l, s)),
                    expected, tokens);
        }
    }
}
