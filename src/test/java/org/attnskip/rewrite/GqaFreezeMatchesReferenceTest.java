package org.attnskip.rewrite;

import org.attnskip.Fixtures;
import org.attnskip.OrtFeeds;
import org.attnskip.export.ExportDtype;
import org.attnskip.export.FusedLlamaExporter;
import org.attnskip.export.Llama2cCheckpoint;
import org.attnskip.export.LlamaOnnxExporter;
import org.attnskip.export.LlamaWeights;
import org.attnskip.export.TestLlamaWeights;
import org.attnskip.layout.LayoutDiscovery;
import org.attnskip.layout.StepMaskWidth;
import org.attnskip.onnx.BadInputException;
import org.attnskip.onnx.Graph;
import org.attnskip.onnx.LoadedModel;
import org.attnskip.onnx.OnnxModelIO;
import org.attnskip.reference.Manipulation;
import org.attnskip.reference.ReferenceLlama;
import org.attnskip.runtime.DecoderSession;
import org.attnskip.runtime.Device;
import org.attnskip.runtime.KvCache;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.TreeMap;
import java.util.TreeSet;

import static org.attnskip.TestTokens.tokens;
import static org.attnskip.TestTokens.ones;
import static org.attnskip.TestTokens.range;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Freeze on GroupQueryAttention graphs ({@code export --graph fused}): each flavour's deployable
 * graph against the reference implementation with the same flavour (±1e-4), as prefills of several
 * lengths from an empty cache and as a prefill of half the sequence followed by token-by-token
 * decoding, at k in {0, 1, L/2, L-1, L}; the single-input evaluation form at every position, and
 * its last position equal to the deployable graph's. Models: stories260K (head size 8: rotary in
 * RotaryEmbedding nodes after a Split of the packed projection), stories-deep12 (head size 16:
 * the op rotates a packed q|k|v itself) and a synthetic model with fewer KV heads than heads and
 * q/k/v biases, head size 16.
 */
class GqaFreezeMatchesReferenceTest {
    private static final float TOLERANCE = 1e-4f;
    private static final int SEQ = 20;
    private static final Map<String, Float> WORST = new TreeMap<>();

    @TempDir
    Path tmp;

    @ParameterizedTest
    @ValueSource(strings = {"stories260K", "deep12", "synthetic-gqa16"})
    void bothFlavoursMatchTheReference(String name) throws Exception {
        LlamaWeights w = model(name);
        int L = w.config.layers();
        int[] tokens = tokens(w.config.vocabSize(), SEQ, name.hashCode());
        ReferenceLlama ref = new ReferenceLlama(w);
        Path base = tmp.resolve(name + "-fused.onnx");
        OnnxModelIO.save(FusedLlamaExporter.export(w, ExportDtype.FLOAT), null, base, false);
        for (int k : new TreeSet<>(List.of(0, 1, L / 2, L - 1, L))) {
            LayerSelection s = LayerSelection.fromLayer(k, L);
            for (FreezeKv kv : FreezeKv.values()) {
                float[][] expected = ref.logitsAllPositions(tokens, kv == FreezeKv.PAPER ? new Manipulation.Freeze(k)
                        : new Manipulation.SingleInputFreeze(k));
                String what = name + " " + kv.label + " k=" + k;
                Path deployable = rewrite(base, (g, l) -> kv.pass(FreezeForm.DEPLOYABLE).apply(g, l, s));
                if (k < L) {
                    compareLastPosition(what, deployable, expected, tokens, kv == FreezeKv.SINGLE_INPUT);
                } else {
                    compareAll(what, deployable, expected, tokens); // nothing to freeze: unchanged graph
                }
                if (kv == FreezeKv.SINGLE_INPUT) {
                    Path all = rewrite(base, (g, l) -> kv.pass(FreezeForm.EVALUATION).apply(g, l, s));
                    compareAll(what + " all-positions", all, expected, tokens);
                    if (k < L) {
                        sameLastLogits(what, all, deployable, tokens);
                    }
                }
            }
        }
    }

    /** Freeze at 0 moves the logits by far more than the tolerance, so the comparisons above can fail. */
    @Test
    void freezeChangesTheModelByMoreThanTheTolerance() throws Exception {
        LlamaWeights w = model("synthetic-gqa16");
        ReferenceLlama ref = new ReferenceLlama(w);
        int[] tokens = tokens(w.config.vocabSize(), SEQ, 5);
        float[] normal = ref.logitsAllPositions(tokens)[SEQ - 1];
        for (Manipulation m : List.of(new Manipulation.Freeze(0), new Manipulation.SingleInputFreeze(0))) {
            float effect = org.attnskip.Deltas.maxAbsDelta(normal, ref.logitsAllPositions(tokens, m)[SEQ - 1]);
            assertTrue(effect > 100 * TOLERANCE, m + " moves the last logits by only " + effect);
        }
        float between = org.attnskip.Deltas.maxAbsDelta(ref.logitsAllPositions(tokens, new Manipulation.Freeze(1))[SEQ - 1],
                ref.logitsAllPositions(tokens, new Manipulation.SingleInputFreeze(1))[SEQ - 1]);
        assertTrue(between > 100 * TOLERANCE, "the two flavours differ by only " + between);
    }

    /** Paper freeze's evaluation form needs the scores GroupQueryAttention hides: exit 2 with the reason. */
    @Test
    void paperEvaluationFormIsRefused() throws Exception {
        LlamaWeights w = model("synthetic-gqa16");
        Path base = tmp.resolve("refuse.onnx");
        OnnxModelIO.save(FusedLlamaExporter.export(w, ExportDtype.FLOAT), null, base, false);
        Graph g = OnnxModelIO.load(base).graph();
        LayerSelection s = LayerSelection.fromLayer(1, w.config.layers());
        var e = assertThrows(BadInputException.class,
                () -> FreezeKv.PAPER.pass(FreezeForm.EVALUATION).apply(g, LayoutDiscovery.discover(g), s));
        assertTrue(e.getMessage().contains("GroupQueryAttention"), e.getMessage());
    }

    /** Paper freeze's deployable fused graph gives the last-position logits of its evaluation form on the unfused export. */
    @Test
    void paperLastLogitsEqualTheUnfusedEvaluationForm() throws Exception {
        LlamaWeights w = model("synthetic-gqa16");
        int L = w.config.layers();
        int[] tokens = tokens(w.config.vocabSize(), SEQ, 9);
        Path fused = tmp.resolve("p-fused.onnx");
        Path unfused = tmp.resolve("p-unfused.onnx");
        OnnxModelIO.save(FusedLlamaExporter.export(w, ExportDtype.FLOAT), null, fused, false);
        OnnxModelIO.save(LlamaOnnxExporter.export(w, ExportDtype.FLOAT), null, unfused, false);
        LayerSelection s = LayerSelection.fromLayer(L / 2, L);
        sameLastLogits("paper fused vs unfused evaluation form",
                rewrite(unfused, (g, l) -> FreezeKv.PAPER.pass(FreezeForm.EVALUATION).apply(g, l, s)),
                rewrite(fused, (g, l) -> FreezeKv.PAPER.pass(FreezeForm.DEPLOYABLE).apply(g, l, s)), tokens);
    }

    /** Single-input keeps the in-place cache; paper writes its cache by Concat, so the session grows it. */
    @Test
    void singleInputKeepsTheInPlaceCache() throws Exception {
        LlamaWeights w = model("synthetic-gqa16");
        Path base = tmp.resolve("inplace.onnx");
        OnnxModelIO.save(FusedLlamaExporter.export(w, ExportDtype.FLOAT), null, base, false);
        LayerSelection s = LayerSelection.fromLayer(1, w.config.layers());
        Path single = rewrite(base, (g, l) -> FreezeKv.SINGLE_INPUT.pass(FreezeForm.DEPLOYABLE).apply(g, l, s));
        Path paper = rewrite(base, (g, l) -> FreezeKv.PAPER.pass(FreezeForm.DEPLOYABLE).apply(g, l, s));
        // the first-prompt test (Equal on the total length, then If) still reads the mask as lengths only,
        // so decode steps keep one capacity-wide mask
        long before = StepMaskWidth.limit(OnnxModelIO.load(base).graph(), "attention_mask");
        assertTrue(before > 0);
        assertEquals(before, StepMaskWidth.limit(OnnxModelIO.load(single).graph(), "attention_mask"));
        try (DecoderSession singleSession = DecoderSession.open(single, Device.CPU);
             DecoderSession paperSession = DecoderSession.open(paper, Device.CPU)) {
            assertTrue(singleSession.updatesCacheInPlace());
            assertFalse(paperSession.updatesCacheInPlace());
        }
    }

    @AfterAll
    static void printWorst() {
        WORST.forEach((k, v) -> System.out.printf("max |delta| %-34s %.2e%n", k, v));
    }

    private static LlamaWeights model(String name) throws Exception {
        return switch (name) {
            case "stories260K" -> Llama2cCheckpoint.read(Fixtures.model("stories260K/stories260K.bin"));
            case "deep12" -> Llama2cCheckpoint.read(Fixtures.model("stories-deep12/stories-deep12.bin"));
            // 4 heads over 2 KV heads of size 16 (rotary inside the op), q/k/v biases
            case "synthetic-gqa16" -> TestLlamaWeights.random(TestLlamaWeights.config(64, 96, 4, 4, 2, 97, 64, false, true), 43);
            default -> throw new IllegalArgumentException(name);
        };
    }

    private Path rewrite(Path base, java.util.function.BiFunction<Graph, org.attnskip.layout.DecoderLayout, ChangeReport> pass) {
        LoadedModel loaded = OnnxModelIO.load(base);
        Graph g = loaded.graph();
        pass.apply(g, LayoutDiscovery.discover(g));
        Path out = tmp.resolve("rewritten-" + System.nanoTime() + ".onnx");
        OnnxModelIO.save(loaded, g.toModel(), out);
        return out;
    }

    /** A prefill of the whole sequence, then token by token with the session's cache and, if in place, a growing one. */
    private void compareAll(String what, Path graph, float[][] expected, int[] tokens) {
        try (DecoderSession s = DecoderSession.open(graph, Device.CPU)) {
            var out = s.run(new long[][] {longs(tokens, tokens.length)}, new long[][] {ones(tokens.length)},
                    new long[][] {range(tokens.length)}, s.emptyCache(1));
            for (int t = 0; t < tokens.length; t++) {
                assertClose(what + " prefill pos " + t, expected[t], out.logits().at(0, t));
            }
            out.cache().close();
            decode(what + " cached", s, s.emptyCache(1, 5), 0, expected, tokens);
            if (s.updatesCacheInPlace()) {
                decode(what + " growing", s, s.growingCache(1), 0, expected, tokens);
            }
        }
    }

    /**
     * A graph with last-position logits: prefills of several lengths from an empty cache; a prefill of
     * half the sequence, a prompt of three more positions onto it, then token by token (in a buffer
     * that must grow on the way when in place).
     */
    private void compareLastPosition(String what, Path graph, float[][] expected, int[] tokens, boolean inPlace) {
        try (DecoderSession s = DecoderSession.open(graph, Device.CPU)) {
            assertEquals(inPlace, s.updatesCacheInPlace(), what + ": cache updated in place");
            for (int n : new int[] {1, 2, tokens.length / 2, tokens.length}) {
                var out = s.run(new long[][] {longs(tokens, n)}, new long[][] {ones(n)}, new long[][] {range(n)},
                        s.emptyCache(1));
                assertEquals(1, out.logits().seq(), "one position of logits");
                assertClose(what + " prefill of " + n, expected[n - 1], out.logits().at(0, 0));
                out.cache().close();
            }
            int half = tokens.length / 2;
            KvCache cache = s.emptyCache(1, half + 2);
            var out = s.run(new long[][] {longs(tokens, half)}, new long[][] {ones(half)}, new long[][] {range(half)}, cache);
            assertClose(what + " prefill of " + half, expected[half - 1], out.logits().at(0, 0));
            // a later prompt of several positions onto that cache (not a first prompt), then token by token
            int chunk = 3;
            long[] positions = java.util.stream.LongStream.range(half, half + chunk).toArray();
            out = s.run(new long[][] {java.util.Arrays.copyOfRange(longs(tokens, half + chunk), half, half + chunk)},
                    new long[][] {ones(half + chunk)}, new long[][] {positions}, out.cache());
            assertClose(what + " prompt of " + chunk + " after " + half, expected[half + chunk - 1], out.logits().at(0, 0));
            decode(what + " decode", s, out.cache(), half + chunk, expected, tokens);
        }
    }

    private void decode(String what, DecoderSession s, KvCache cache, int from, float[][] expected, int[] tokens) {
        for (int t = from; t < tokens.length; t++) {
            var step = s.run(new long[][] {{tokens[t]}}, new long[][] {ones(t + 1)}, new long[][] {{t}}, cache);
            assertClose(what + " pos " + t, expected[t], step.logits().at(0, 0));
            cache = step.cache();
        }
        cache.close();
    }

    private void sameLastLogits(String what, Path all, Path last, int[] tokens) {
        float[] a;
        float[] b;
        int n = tokens.length;
        try (DecoderSession s = DecoderSession.open(all, Device.CPU)) {
            var out = s.run(new long[][] {longs(tokens, n)}, new long[][] {ones(n)}, new long[][] {range(n)}, s.emptyCache(1));
            a = out.logits().at(0, n - 1);
            out.cache().close();
        }
        try (DecoderSession s = DecoderSession.open(last, Device.CPU)) {
            var out = s.run(new long[][] {longs(tokens, n)}, new long[][] {ones(n)}, new long[][] {range(n)}, s.emptyCache(1));
            b = out.logits().at(0, 0);
            out.cache().close();
        }
        assertClose(what + " last-position vs all-positions", a, b);
    }

    private void assertClose(String what, float[] expected, float[] actual) {
        float m = org.attnskip.Deltas.maxAbsDelta(expected, actual);
        String[] words = what.split(" ");
        WORST.merge(words[0] + " " + words[1] + (what.contains("all-positions") ? " all" : ""), m, Math::max);
        assertTrue(m <= TOLERANCE, () -> what + ": max |delta| = " + m);
    }

    private static long[] longs(int[] a, int n) {
        long[] out = new long[n];
        for (int i = 0; i < n; i++) {
            out[i] = a[i];
        }
        return out;
    }

}
