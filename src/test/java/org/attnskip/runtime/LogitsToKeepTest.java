package org.attnskip.runtime;

import org.attnskip.Fixtures;
import org.attnskip.eval.ScoringModel;
import org.attnskip.export.ExportDtype;
import org.attnskip.export.GraphFlavour;
import org.attnskip.export.LlamaWeights;
import org.attnskip.export.TestLlamaWeights;
import org.attnskip.layout.DecoderLayout;
import org.attnskip.layout.LayoutDiscovery;
import org.attnskip.onnx.OnnxModelIO;
import org.attnskip.reference.AffineMap;
import org.attnskip.reference.Noise;
import org.attnskip.reference.ReferenceLlama;
import org.attnskip.rewrite.FreezeForm;
import org.attnskip.rewrite.FreezeKv;
import org.attnskip.rewrite.LayerSelection;
import org.attnskip.rewrite.Rewrite;
import org.attnskip.rewrite.RewriteRequest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;

import static org.attnskip.Deltas.maxAbsDelta;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * attnskip's exports take {@code logits_to_keep}: asking for the last position gives one row of
 * logits, equal to the last row of all positions' logits, on every flavour and after the rewrites;
 * the cache a last-only prefill leaves is the same (the next step's logits agree); generation asks
 * for the last position only and scoring for all of them.
 */
class LogitsToKeepTest {
    private static final int[] PROMPT = {1, 17, 42, 5, 88, 23, 9, 61, 3, 70, 12};
    private static final int NEXT = 31;
    /** fp32: one row through the LM head against the same row among many (kernel blocking may differ). */
    private static final float SAME_ROW = 1e-5f;
    private static final float REFERENCE = 1e-4f;

    @TempDir
    Path tmp;

    private static LlamaWeights weights() {
        // head size 16, grouped-query: every flavour exports it, GroupQueryAttention rotates inside
        return TestLlamaWeights.random(TestLlamaWeights.config(64, 96, 4, 4, 2, 97, 64, false, false), 11);
    }

    @ParameterizedTest
    @EnumSource(GraphFlavour.class)
    void lastOnlyIsTheLastRowOfAllPositions(GraphFlavour flavour) {
        LlamaWeights w = weights();
        Path base = export(w, flavour);
        int L = w.config.layers();
        Map<String, Path> graphs = new LinkedHashMap<>();
        graphs.put("export", base);
        graphs.put("drop 2", rewrite(base, RewriteRequest.drop(64), 2));
        graphs.put("compensated drop 2", rewrite(base, RewriteRequest.compensatedDrop(maps(w.config.dim(), 2, L), Map.of(), 64), 2));
        graphs.put("freeze deployable", rewrite(base, RewriteRequest.freeze(FreezeKv.PAPER, FreezeForm.DEPLOYABLE), 2));
        graphs.put("freeze single-input all", rewrite(base, RewriteRequest.freeze(FreezeKv.SINGLE_INPUT, FreezeForm.EVALUATION), 2));
        float[][] reference = new ReferenceLlama(w).logitsAllPositions(PROMPT);
        for (Map.Entry<String, Path> e : graphs.entrySet()) {
            String what = flavour.cliName() + " " + e.getKey();
            DecoderLayout layout = LayoutDiscovery.discover(OnnxModelIO.load(e.getValue()).graph());
            assertEquals("logits_to_keep", layout.logitsToKeep(), what);
            assertTrue(layout.hasLmHead() && layout.vocabSize() == 97 && layout.numLayers() > 0, what + ": head found");
            boolean deployable = e.getKey().contains("deployable");
            try (DecoderSession s = DecoderSession.open(e.getValue(), Device.CPU)) {
                assertTrue(s.keepsAskedLogitsOnly(), what);
                DecoderSession.Output all = s.append(PROMPT, s.emptyCache(1, 32), LogitRows.ALL);
                DecoderSession.Output last = s.append(PROMPT, s.emptyCache(1, 32), LogitRows.LAST);
                // A deployable freeze computes the last position only, whatever is fed.
                assertEquals(deployable ? 1 : PROMPT.length, all.logits().seq(), what + ": rows with logits_to_keep 0");
                assertEquals(1, last.logits().seq(), what + ": rows with logits_to_keep 1");
                assertEquals(97, last.logits().vocab(), what);
                float d = maxAbsDelta(all.logits().last(0), last.logits().last(0));
                assertTrue(d <= SAME_ROW, what + ": last-only vs last of all, max |delta| " + d);
                if (e.getKey().equals("export")) {
                    float r = maxAbsDelta(reference[PROMPT.length - 1], last.logits().last(0));
                    assertTrue(r <= REFERENCE, what + ": vs ReferenceLlama, max |delta| " + r);
                }
                // The cache is the same either way: so is the next step.
                DecoderSession.Output stepAfterAll = s.append(new int[] {NEXT}, all.cache(), LogitRows.LAST);
                DecoderSession.Output stepAfterLast = s.append(new int[] {NEXT}, last.cache(), LogitRows.LAST);
                float step = maxAbsDelta(stepAfterAll.logits().last(0), stepAfterLast.logits().last(0));
                assertTrue(step <= SAME_ROW, what + ": next step after each prefill, max |delta| " + step);
                stepAfterAll.cache().close();
                stepAfterLast.cache().close();
            }
        }
    }

    /** Random attention feeds noise for the run's positions; the last-only logits still equal the last row. */
    @Test
    void randomGraphKeepsTheInput() {
        LlamaWeights w = weights();
        Path random = rewrite(export(w, GraphFlavour.FUSED), RewriteRequest.random(Noise.GAUSSIAN, 5), 2);
        try (DecoderSession s = DecoderSession.open(random, Device.CPU)) {
            ScoringModel model = new ScoringModel(s);
            DecoderSession.Output all = model.append(PROMPT, s.emptyCache(1), LogitRows.ALL);
            DecoderSession.Output last = model.append(PROMPT, s.emptyCache(1), LogitRows.LAST);
            assertEquals(PROMPT.length, all.logits().seq());
            assertEquals(1, last.logits().seq());
            float d = maxAbsDelta(all.logits().last(0), last.logits().last(0));
            assertTrue(d <= SAME_ROW, "random: max |delta| " + d);
            all.cache().close();
            last.cache().close();
            // Scoring a random graph runs one pass per prefix and reads its last position only.
            long allBefore = s.runsAsking(LogitRows.ALL);
            double[][] rows = model.logProbs(PROMPT, 1);
            assertEquals(allBefore, s.runsAsking(LogitRows.ALL));
            assertEquals(1 + (PROMPT.length - 1), s.runsAsking(LogitRows.LAST));
            double[] whole = LogProbs.logSoftmax(all.logits().last(0));
            double worst = 0;
            for (int v = 0; v < whole.length; v++) {
                worst = Math.max(worst, Math.abs(whole[v] - rows[PROMPT.length - 2][v]));
            }
            assertTrue(worst <= SAME_ROW, "random: log-probs of the whole prompt's pass, max |delta| " + worst);
        }
    }

    /** Generation (prefill and every decode step) asks for the last position; scoring for all of them. */
    @ParameterizedTest
    @EnumSource(value = GraphFlavour.class, names = {"UNFUSED", "FUSED"})
    void generationAsksForTheLastPositionAndScoringForAll(GraphFlavour flavour) {
        try (DecoderSession s = DecoderSession.open(export(weights(), flavour), Device.CPU)) {
            Generator.Generation g = new Generator(s, new DigitsTokenizer()).generate(PROMPT,
                    new Generator.Options(PROMPT.length + 5, 0f, 1f, 0), piece -> { });
            assertTrue(g.generatedIds().length > 0);
            assertEquals(0, s.runsAsking(LogitRows.ALL), "generation asked for every position's logits");
            assertEquals(g.timing().decodeRuns() + 1, s.runsAsking(LogitRows.LAST));

            double[][] rows = new ScoringModel(s).logProbs(PROMPT, 1);
            assertEquals(PROMPT.length - 1, rows.length);
            assertEquals(1, s.runsAsking(LogitRows.ALL));
        }
    }

    /** A third-party graph has no such input: nothing is fed and every position comes back as before. */
    @Test
    void thirdPartyGraphHasNone() {
        Path genai = Fixtures.model("ortgenai-llama-fp16/model.onnx");
        DecoderIo io = DecoderIo.discover(genai);
        assertNull(io.logitsToKeep());
        try (DecoderSession s = DecoderSession.open(genai, Device.CPU)) {
            assertTrue(!s.keepsAskedLogitsOnly());
            DecoderSession.Output out = s.append(new int[] {1, 450, 4996}, s.emptyCache(1), LogitRows.LAST);
            assertEquals(3, out.logits().seq());
            out.cache().close();
        }
    }

    /** A full-rank map per dropped layer: 0.5 x plus a small bias, enough to put MatMul/Add nodes in the stream. */
    private static Map<Integer, AffineMap> maps(int dim, int from, int layers) {
        Map<Integer, AffineMap> maps = new LinkedHashMap<>();
        for (int layer = from; layer < layers; layer++) {
            float[] first = new float[dim * dim];
            float[] bias = new float[dim];
            for (int i = 0; i < dim; i++) {
                first[i * dim + i] = 0.5f;
                bias[i] = 0.01f * (i % 7);
            }
            maps.put(layer, new AffineMap(dim, first, null, bias));
        }
        return maps;
    }

    private Path export(LlamaWeights w, GraphFlavour flavour) {
        Path out = tmp.resolve(flavour.cliName() + ".onnx");
        OnnxModelIO.save(flavour.export(w, ExportDtype.FLOAT, null), null, out, false);
        assertNotNull(DecoderIo.discover(out).logitsToKeep());
        return out;
    }

    private Path rewrite(Path base, RewriteRequest request, int k) {
        Path out = tmp.resolve("rewritten-" + System.nanoTime() + ".onnx");
        Rewrite.file(base, request, L -> LayerSelection.fromLayer(k, L), out, "test");
        return out;
    }

    /** Ids as text, enough for a generator that only needs pieces. */
    private static final class DigitsTokenizer implements Tokenizer {
        @Override
        public int[] encode(String text) {
            return Arrays.stream(text.trim().split(" +")).mapToInt(Integer::parseInt).toArray();
        }

        @Override
        public String decode(int prev, int token) {
            return " " + token;
        }

        @Override
        public int bos() {
            return -1;
        }

        @Override
        public int eos() {
            return -1;
        }

        @Override
        public int vocabSize() {
            return 97;
        }
    }
}
