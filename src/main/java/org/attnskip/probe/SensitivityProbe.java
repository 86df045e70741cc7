package org.attnskip.probe;

import org.attnskip.eval.Progress;
import org.attnskip.rewrite.Mode;
import org.attnskip.rewrite.RewriteRequest;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The sensitivity and single-layer drop experiments and, given a tolerance, the recommendations:
 * one per manipulation (smallest k within tolerance) and, for drop, the greedy non-contiguous set.
 */
public final class SensitivityProbe {
    /**
     * @param curves         mode name -> one row per k = 0..L
     * @param singleDrops    dropping only layer i's attention, per i (empty when not measured)
     * @param nonContiguous  null without a tolerance, without drop, or with nothing to rank by
     */
    public record Result(Map<String, List<SensitivityRow>> curves, List<SensitivityRow> singleDrops,
                         List<Recommendation> recommendations, NonContiguousDrop nonContiguous) {
        /** The recommendation with the biggest saving across the deployable modes ({@link Recommender#overall}), or null. */
        @com.fasterxml.jackson.annotation.JsonProperty("overall")
        public Recommendation overall() {
            return Recommender.overall(recommendations, nonContiguous);
        }
    }

    private SensitivityProbe() {
    }

    /**
     * @param attentionInfluence per layer 1 - cos of the attention sub-block, or null
     * @param switchPrefersInjected per layer, or null
     */
    public static Result run(SensitivityExperiment experiment, List<RewriteRequest> modes, boolean measureSingleDrops,
                             QualityTolerance tolerance, List<Double> attentionInfluence, List<Double> switchPrefersInjected) {
        int L = experiment.numLayers();
        Map<String, List<SensitivityRow>> curves = new LinkedHashMap<>();
        for (RewriteRequest m : modes) {
            curves.put(m.label(), experiment.curve(m));
        }
        List<SensitivityRow> singles = measureSingleDrops ? experiment.singleLayerDrops() : List.of();
        List<Recommendation> recommendations = new ArrayList<>();
        NonContiguousDrop nonContiguous = null;
        if (tolerance != null) {
            List<Double> singleKl = singles.isEmpty() ? null : singles.stream().map(SensitivityRow::kl).toList();
            var evidence = new Recommender.Evidence(attentionInfluence, singleKl, switchPrefersInjected);
            curves.values().forEach(c -> recommendations.add(Recommender.recommend(c, tolerance, L, evidence)));
            boolean hasDrop = modes.stream().anyMatch(m -> m.mode() == Mode.DROP);
            List<Double> ranking = singleKl != null ? singleKl : usable(attentionInfluence) ? attentionInfluence : null;
            if (hasDrop && ranking != null) {
                try (Progress progress = Progress.start("non-contiguous drop", L, experiment.quiet())) {
                    nonContiguous = Recommender.greedyDrop(Recommender.rank(ranking),
                            singleKl != null ? "single-layer drop KL" : "attention 1 - cos", tolerance, layers -> {
                                SensitivityRow row = experiment.dropLayers(layers);
                                progress.step();
                                return row;
                            });
                }
            }
        }
        return new Result(curves, singles, recommendations, nonContiguous);
    }

    private static boolean usable(List<Double> scores) {
        return scores != null && scores.stream().noneMatch(s -> s == null || s.isNaN());
    }
}
