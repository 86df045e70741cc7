package org.attnskip.probe;

import org.attnskip.eval.Estimate;
import org.attnskip.eval.TextQuality;
import org.attnskip.onnx.BadInputException;
import org.attnskip.rewrite.Mode;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The recommendation logic on made-up measurements whose answers are known by hand. */
class RecommenderTest {

    static TextQuality quality(double top1, double kl, double pplBase, double pplVariant) {
        return new TextQuality(4, 100, point(pplBase), point(pplVariant), point(pplVariant - pplBase), point(top1), point(kl));
    }

    static Estimate point(double v) {
        return new Estimate(v, v, v);
    }

    static SensitivityRow row(String mode, int k, double top1, double kl, double pplRatio) {
        return new SensitivityRow(mode, k, List.of(), k, quality(top1, kl, 10, 10 * pplRatio), 0, 0, 0, 0, 0);
    }

    @Test
    void toleranceParsing() {
        QualityTolerance t = QualityTolerance.parse("top1=0.9");
        assertEquals(List.of(new QualityTolerance.Bound(QualityTolerance.Metric.TOP1, 0.9)), t.bounds());
        assertEquals(0.05, QualityTolerance.parse("ppl=+5%").bounds().get(0).limit(), 1e-12);
        assertEquals(0.05, QualityTolerance.parse("ppl=5%").bounds().get(0).limit(), 1e-12);
        assertEquals(0.05, QualityTolerance.parse("ppl=0.05").bounds().get(0).limit(), 1e-12);
        QualityTolerance both = QualityTolerance.parse("kl=0.1, top1=0.8");
        assertEquals(2, both.bounds().size());
        assertEquals(QualityTolerance.Metric.KL, both.bounds().get(0).metric());
        for (String bad : new String[] {"", "top1", "top1=x", "acc=0.9", "top1=1.5", "kl=-1", "ppl=+x%"}) {
            assertThrows(BadInputException.class, () -> QualityTolerance.parse(bad), bad);
        }
    }

    @Test
    void boundsAreInclusiveAndAllMustHold() {
        assertTrue(QualityTolerance.parse("top1=0.9").accepts(quality(0.9, 5, 10, 100)));
        assertFalse(QualityTolerance.parse("top1=0.9").accepts(quality(0.899, 0, 10, 10)));
        assertTrue(QualityTolerance.parse("kl=0.1").accepts(quality(0, 0.1, 10, 10)));
        assertFalse(QualityTolerance.parse("kl=0.1").accepts(quality(1, 0.11, 10, 10)));
        assertTrue(QualityTolerance.parse("ppl=+5%").accepts(quality(1, 0, 10, 10.5)));
        assertFalse(QualityTolerance.parse("ppl=+5%").accepts(quality(1, 0, 10, 10.51)));
        assertFalse(QualityTolerance.parse("top1=0.9,kl=0.1").accepts(quality(0.95, 0.2, 10, 10)));
    }

    @Test
    void smallestAcceptedKIsChosenEvenWhenTheCurveIsNotMonotone() {
        // L = 5: k = 0, 1 fail; k = 2 passes; k = 3 fails (noise); k = 4, 5 pass
        double[] top1 = {0.2, 0.7, 0.92, 0.88, 0.95, 1.0};
        List<SensitivityRow> curve = new ArrayList<>();
        for (int k = 0; k <= 5; k++) {
            curve.add(row("drop", k, top1[k], 0, 1));
        }
        Recommendation r = Recommender.recommend(curve, QualityTolerance.parse("top1=0.9"), 5, null);
        assertEquals(2, r.k());
        assertTrue(r.note().contains("[3]"), r.note());
        assertEquals(4, Recommender.recommend(curve, QualityTolerance.parse("top1=0.93"), 5, null).k());
        assertEquals(5, Recommender.recommend(curve, QualityTolerance.parse("top1=0.99"), 5, null).k());
        assertNull(Recommender.smallestAcceptedK(curve.subList(0, 2), QualityTolerance.parse("top1=0.9")));
    }

    @Test
    void rankingIsLeastImportantFirstWithUpperLayersWinningTies() {
        assertEquals(List.of(3, 1, 2, 0), Recommender.rank(List.of(0.9, 0.1, 0.5, 0.1 - 1e-9)));
        assertEquals(List.of(2, 1, 0), Recommender.rank(List.of(0.0, 0.0, 0.0)));
    }

    @Test
    void greedyKeepsEachLayerWhoseCombinationStaysWithinTolerance() {
        // a made-up additive model: dropping layer i costs cost[i] of top-1 agreement
        double[] cost = {0.5, 0.03, 0.04, 0.08, 0.02};
        List<List<Integer>> measured = new ArrayList<>();
        NonContiguousDrop d = Recommender.greedyDrop(List.of(4, 1, 2, 3, 0), "made up", QualityTolerance.parse("top1=0.9"),
                layers -> {
                    measured.add(layers);
                    double top1 = 1 - layers.stream().mapToDouble(i -> cost[i]).sum();
                    return row("drop", -1, top1, 0, 1);
                });
        // 4 (0.98), +1 (0.95), +2 (0.91), +3 would be 0.83: skipped, +0 would be 0.41: skipped
        assertEquals(List.of(1, 2, 4), d.layers());
        assertEquals(0.91, d.evidence().top1(), 1e-12);
        assertEquals(List.of(List.of(4), List.of(1, 4), List.of(1, 2, 4), List.of(1, 2, 3, 4), List.of(0, 1, 2, 4)), measured);
        assertEquals(List.of(true, true, true, false, false), d.steps().stream().map(NonContiguousDrop.Step::kept).toList());
    }

    @Test
    void agreementCountsTheLeastInfluentialLayersAboveK() {
        var evidence = new Recommender.Evidence(List.of(0.5, 0.4, 0.1, 0.05, 0.2), null, List.of(1.0, 0.9, 0.6, 0.2, 0.1));
        List<String> a = evidence.agreementWith(3, 5);
        // the two least influential: layers 3 and 2; only 3 is at or above k = 3
        assertTrue(a.get(0).contains("1 of the 2") && a.get(0).contains("[2, 3]"), a.get(0));
        assertTrue(a.get(1).contains("from layer 3") && a.get(1).contains("agrees"), a.get(1));
        assertEquals(3, Recommender.Evidence.switchIgnoredFrom(List.of(0.9, 0.2, 0.8, 0.4, 0.1)));
        assertEquals(-1, Recommender.Evidence.switchIgnoredFrom(List.of(0.2, 0.9)));
        assertEquals(Set.of(), Set.copyOf(evidence.agreementWith(5, 5)));
    }

    @Test
    void autoPrefersTheNonContiguousSetOnlyWhenItDropsMoreLayers() {
        QualityTolerance t = QualityTolerance.parse("top1=0.9");
        List<SensitivityRow> curve = new ArrayList<>();
        double[] top1 = {0.1, 0.3, 0.6, 0.8, 0.93, 1.0};
        for (int k = 0; k <= 5; k++) {
            curve.add(new SensitivityRow("drop", k, k == 5 ? List.of() : List.of(4), k, quality(top1[k], 0, 10, 10), 0, 0, 0, 0, 0));
        }
        Recommendation contiguous = Recommender.recommend(curve, t, 5, null);
        SensitivityRow pair = row("drop", -1, 0.91, 0, 1);
        NonContiguousDrop two = new NonContiguousDrop(t.toString(), "made up", List.of(2, 4), List.of(), List.of(2, 4), pair);
        AutoChoice c = AutoChoice.pick(Mode.DROP,
                new SensitivityProbe.Result(java.util.Map.of("drop", curve), List.of(), List.of(contiguous), two), t, 5);
        assertEquals(Set.of(2, 4), Set.copyOf(c.selection().layers()));
        assertEquals(-1, c.selection().firstLayer());
        assertEquals("2,4", c.metadata().get("auto_layers"));
        assertEquals("0.91", c.metadata().get("auto_top1_agreement"));
        NonContiguousDrop one = new NonContiguousDrop(t.toString(), "made up", List.of(4), List.of(), List.of(4), pair);
        AutoChoice k4 = AutoChoice.pick(Mode.DROP,
                new SensitivityProbe.Result(java.util.Map.of("drop", curve), List.of(), List.of(contiguous), one), t, 5);
        assertEquals(4, k4.selection().firstLayer());
        assertEquals("0.93", k4.metadata().get("auto_top1_agreement"));
    }

    /** A recommendation of mode on layers with a measured saving (attention FLOPs per token, KV bytes saved, prefill share). */
    static Recommendation saving(String mode, List<Integer> layers, long flops, long kvSaved, double prefill) {
        SensitivityRow e = new SensitivityRow(mode, layers.isEmpty() ? 5 : layers.get(0), layers, 0, quality(0.95, 0.05, 10, 10.1),
                1024, flops, 1000, 1000 - kvSaved, prefill);
        return new Recommendation(mode, "top1=0.9", e.k(), layers, e, List.of(), null);
    }

    @Test
    void overallPicksTheDeployableModeThatSavesMost() {
        Recommendation drop = saving("drop", List.of(4), 1000, 200, 0);
        Recommendation compensated = saving("drop-compensated", List.of(3, 4), 1800, 400, 0);
        Recommendation freeze = saving("freeze", List.of(1, 2, 3, 4), 0, 0, 0.8);
        Recommendation random = saving("random-gaussian", List.of(0, 1, 2, 3, 4), 0, 0, 0);
        // compensated drop keeps two layers' attention FLOPs (net of its maps) against plain drop's one
        assertEquals("drop-compensated", Recommender.overall(List.of(drop, compensated, freeze, random), null).mode());
        // with equal FLOPs, KV bytes decide; freeze, which saves neither, wins only when no drop keeps a layer
        Recommendation sameFlops = saving("drop", List.of(4), 1800, 500, 0);
        assertEquals(sameFlops, Recommender.overall(List.of(compensated, sameFlops, freeze), null));
        Recommendation nothing = saving("drop", List.of(), 0, 0, 0);
        assertEquals("freeze", Recommender.overall(List.of(nothing, freeze, random), null).mode());
        assertNull(Recommender.overall(List.of(nothing, random), null));
        // the greedy non-contiguous drop competes too
        SensitivityRow pairRow = new SensitivityRow("drop", -1, List.of(1, 4), 1, quality(0.92, 0.1, 10, 10.2), 1024, 2000, 1000,
                600, 0);
        NonContiguousDrop pair = new NonContiguousDrop("top1=0.9", "single-layer drop KL", List.of(4, 1), List.of(), List.of(1, 4),
                pairRow);
        Recommendation best = Recommender.overall(List.of(drop, compensated, freeze), pair);
        assertEquals("drop (non-contiguous)", best.mode());
        assertEquals(List.of(1, 4), best.layers());
    }
}
