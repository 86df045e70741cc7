package org.attnskip.probe;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.TreeSet;
import java.util.function.Function;

/**
 * Turns measured curves into recommendations. Pure logic on measured rows: the measurements come
 * from {@link SensitivityExperiment}, so the choice can be tested on made-up numbers.
 */
public final class Recommender {
    private Recommender() {
    }

    /**
     * The row with the smallest k (the largest saving) whose measured quality is within tolerance;
     * null when none is (k = L changes nothing, so a real curve always has one).
     */
    public static SensitivityRow smallestAcceptedK(List<SensitivityRow> curve, QualityTolerance tolerance) {
        return curve.stream().filter(r -> r.k() >= 0 && tolerance.accepts(r.quality()))
                .min(Comparator.comparingInt(SensitivityRow::k)).orElse(null);
    }

    /** The recommendation of one curve, with what the other probes say about it. */
    public static Recommendation recommend(List<SensitivityRow> curve, QualityTolerance tolerance, int numLayers, Evidence evidence) {
        SensitivityRow best = smallestAcceptedK(curve, tolerance);
        String mode = curve.get(0).mode();
        if (best == null) {
            return new Recommendation(mode, tolerance.toString(), numLayers, List.of(), null, List.of(),
                    "no measured k is within tolerance");
        }
        List<Integer> rejectedAbove = curve.stream().filter(r -> r.k() > best.k() && !tolerance.accepts(r.quality()))
                .map(SensitivityRow::k).toList();
        String note = rejectedAbove.isEmpty() ? null
                : "the curve is not monotone: k = " + rejectedAbove + " above the choice are outside tolerance";
        if (best.k() == numLayers) {
            note = (note == null ? "" : note + "; ") + "even the top layer alone is outside tolerance: change nothing";
        }
        return new Recommendation(mode, tolerance.toString(), best.k(), best.layers(), best,
                evidence == null ? List.of() : evidence.agreementWith(best.k(), numLayers), note);
    }

    /**
     * Layers least important first: by the KL of dropping that layer alone when measured, else by
     * the attention sub-block's 1 - cos; ties by layer index, higher first (upper layers matter less).
     */
    public static List<Integer> rank(List<Double> scoreByLayer) {
        List<Integer> order = new ArrayList<>();
        for (int i = 0; i < scoreByLayer.size(); i++) {
            order.add(i);
        }
        order.sort(Comparator.<Integer>comparingDouble(scoreByLayer::get).thenComparing(Comparator.reverseOrder()));
        return order;
    }

    /**
     * Greedy: try the layers in {@code ranking} order, adding each to the dropped set and measuring
     * the whole set; keep the layer when the set stays within tolerance, skip it otherwise and go on.
     */
    public static NonContiguousDrop greedyDrop(List<Integer> ranking, String rankedBy, QualityTolerance tolerance,
                                               Function<List<Integer>, SensitivityRow> measure) {
        TreeSet<Integer> kept = new TreeSet<>();
        SensitivityRow evidence = null;
        List<NonContiguousDrop.Step> steps = new ArrayList<>();
        for (int layer : ranking) {
            TreeSet<Integer> trial = new TreeSet<>(kept);
            trial.add(layer);
            SensitivityRow row = measure.apply(List.copyOf(trial));
            boolean ok = tolerance.accepts(row.quality());
            steps.add(new NonContiguousDrop.Step(layer, ok, row));
            if (ok) {
                kept = trial;
                evidence = row;
            }
        }
        return new NonContiguousDrop(tolerance.toString(), rankedBy, List.copyOf(ranking), steps, List.copyOf(kept), evidence);
    }

    /**
     * The other probes, per layer (any may be null): the attention sub-block's 1 - cos, the KL of
     * dropping that layer alone, and the switch experiment's share of answers that prefer the
     * injected country when switched at that layer.
     */
    public record Evidence(List<Double> attentionInfluence, List<Double> singleDropKl, List<Double> switchPrefersInjected) {

        List<String> agreementWith(int k, int numLayers) {
            List<String> out = new ArrayList<>();
            int above = numLayers - k;
            if (above == 0) {
                return out;
            }
            lowest(out, attentionInfluence, "attention 1 - cos", k, above);
            lowest(out, singleDropKl, "single-layer drop KL", k, above);
            if (switchPrefersInjected != null) {
                int from = switchIgnoredFrom(switchPrefersInjected);
                if (from < 0) {
                    out.add("switch: the injected country wins at the top layer, so the switch says nothing about k");
                } else {
                    out.add(String.format(Locale.ROOT, "switch: the injected country no longer wins from layer %d on, "
                            + "%s k = %d", from, from <= k ? "which agrees with" : "which is above", k));
                }
            }
            return out;
        }

        private static void lowest(List<String> out, List<Double> scores, String what, int k, int count) {
            if (scores == null || scores.stream().anyMatch(s -> s == null || s.isNaN())) {
                return;
            }
            List<Integer> lowest = rank(scores).subList(0, count);
            long inside = lowest.stream().filter(i -> i >= k).count();
            out.add(String.format(Locale.ROOT, "%s: %d of the %d least influential layers %s lie at or above k = %d%s",
                    what, inside, count, new TreeSet<>(lowest), k, inside == count ? " (agrees)" : ""));
        }

        /** The lowest layer from which the injected country wins in under half the pairs at every layer above; -1 if never. */
        static int switchIgnoredFrom(List<Double> prefersInjected) {
            int from = -1;
            for (int i = prefersInjected.size() - 1; i >= 0; i--) {
                if (prefersInjected.get(i) < 0.5) {
                    from = i;
                } else {
                    break;
                }
            }
            return from;
        }
    }

    /**
     * Of the deployable recommendations (drop, drop-compensated, freeze in either flavour, the
     * non-contiguous drop; random is an analysis), the one that keeps the tolerance with the biggest
     * saving: attention FLOPs per decoded token (drop-compensated's net of its maps), then KV cache
     * bytes per token, then the share of prefill compute skipped. Null when none changes a layer.
     */
    public static Recommendation overall(List<Recommendation> recommendations, NonContiguousDrop nonContiguous) {
        List<Recommendation> candidates = new ArrayList<>(recommendations);
        if (nonContiguous != null && nonContiguous.evidence() != null) {
            candidates.add(new Recommendation("drop (non-contiguous)", nonContiguous.tolerance(), -1, nonContiguous.layers(),
                    nonContiguous.evidence(), List.of(), "ranked by " + nonContiguous.rankedBy() + ", combination measured"));
        }
        Comparator<Recommendation> saving = Comparator
                .comparingLong((Recommendation r) -> r.evidence().attentionFlopsSavedPerToken())
                .thenComparingLong(r -> r.evidence().kvBytesPerTokenBefore() - r.evidence().kvBytesPerTokenAfter())
                .thenComparingDouble(r -> r.evidence().prefillFractionSaved());
        return candidates.stream()
                .filter(r -> !r.mode().startsWith("random") && r.evidence() != null && !r.layers().isEmpty())
                .max(saving).orElse(null);
    }
}
