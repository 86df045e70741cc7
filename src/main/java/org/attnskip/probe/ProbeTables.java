package org.attnskip.probe;

import org.attnskip.eval.Estimate;
import org.attnskip.eval.ReportTables.Table;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.stream.Collectors;

/** The tables of a probe report, for the evaluator's {@link org.attnskip.eval.ReportWriter}. */
public final class ProbeTables {
    private ProbeTables() {
    }

    public static List<Table> of(ProbeReport r) {
        List<Table> tables = new ArrayList<>();
        SensitivityProbe.Result s = r.sensitivity();
        if (s != null && !s.recommendations().isEmpty()) {
            tables.add(overall(s));
            tables.add(recommendations(s));
        }
        if (s != null && s.nonContiguous() != null) {
            tables.add(nonContiguous(s.nonContiguous()));
        }
        if (s != null) {
            s.curves().forEach((mode, rows) -> tables.add(sensitivity(mode, rows)));
        }
        if (r.importance() != null || (s != null && !s.singleDrops().isEmpty())) {
            tables.add(importance(r.importance(), s == null ? List.of() : s.singleDrops()));
        }
        if (r.representations() != null) {
            tables.add(representations(r.representations()));
            tables.add(invariance(r.representations()));
        }
        if (r.switchExperiment() != null) {
            tables.add(switchTable(r.switchExperiment()));
        }
        if (!r.notes().isEmpty()) {
            tables.add(new Table("Notes", null, List.of("note"), r.notes().stream().map(List::of).toList()));
        }
        return tables;
    }

    static Table recommendations(SensitivityProbe.Result s) {
        List<List<String>> rows = new ArrayList<>();
        String tolerance = s.recommendations().get(0).tolerance();
        for (Recommendation rec : s.recommendations()) {
            SensitivityRow e = rec.evidence();
            List<String> why = new ArrayList<>(rec.agreement());
            if (rec.note() != null) {
                why.add(rec.note());
            }
            rows.add(List.of(rec.mode(), Integer.toString(rec.k()), layers(rec.layers()),
                    e == null ? "" : first(e.firstChangedLayer()), e == null ? "" : est(e.quality().top1Agreement()),
                    e == null ? "" : est(e.quality().meanKl()), e == null ? "" : num(e.perplexityRatio(), 4),
                    e == null ? "" : saving(e), String.join("; ", why)));
        }
        NonContiguousDrop d = s.nonContiguous();
        if (d != null && d.evidence() != null) {
            SensitivityRow e = d.evidence();
            rows.add(List.of("drop (non-contiguous)", "-", layers(d.layers()), first(e.firstChangedLayer()),
                    est(e.quality().top1Agreement()), est(e.quality().meanKl()), num(e.perplexityRatio(), 4), saving(e),
                    "ranked by " + d.rankedBy() + ", combination measured"));
        }
        return new Table("Recommendation", "tolerance " + tolerance + " on the measured point values; the smallest k "
                + "(largest saving) within it; 95% bootstrap intervals over documents",
                List.of("mode", "k", "layers changed", "first layer that changes", "top-1 agreement", "mean KL",
                        "ppl variant/baseline", "predicted saving", "evidence"), rows);
    }

    static Table overall(SensitivityProbe.Result s) {
        Recommendation best = s.overall();
        List<List<String>> rows = new ArrayList<>();
        if (best == null) {
            rows.add(List.of("none", "none", "", "", "", "", "no deployable mode keeps the tolerance: change nothing"));
        } else {
            SensitivityRow e = best.evidence();
            rows.add(List.of(best.mode(), layers(best.layers()), est(e.quality().top1Agreement()), est(e.quality().meanKl()),
                    num(e.perplexityRatio(), 4), saving(e), best.note() == null ? "" : best.note()));
        }
        return new Table("Overall recommendation", "of the modes measured, drop, drop-compensated, freeze (and the non-contiguous"
                + " drop), the one within tolerance " + s.recommendations().get(0).tolerance() + " that saves most: attention"
                + " FLOPs per decoded token (drop-compensated's net of its maps), then KV bytes per token, then prefill compute",
                List.of("mode", "layers changed", "top-1 agreement", "mean KL", "ppl variant/baseline", "predicted saving",
                        "note"), rows);
    }

    static Table nonContiguous(NonContiguousDrop d) {
        List<List<String>> rows = new ArrayList<>();
        for (NonContiguousDrop.Step step : d.steps()) {
            SensitivityRow m = step.measured();
            rows.add(List.of(Integer.toString(step.layer()), layers(m.layers()), step.kept() ? "kept" : "skipped",
                    est(m.quality().top1Agreement()), est(m.quality().meanKl()), num(m.perplexityRatio(), 4)));
        }
        return new Table("Non-contiguous drop (greedy)", "layers tried least important first, by " + d.rankedBy()
                + " (order " + d.ranking() + "); a layer is kept when the measured combination is within " + d.tolerance(),
                List.of("layer tried", "combination", "kept", "top-1 agreement", "mean KL", "ppl variant/baseline"), rows);
    }

    static Table sensitivity(String mode, List<SensitivityRow> rows) {
        List<List<String>> out = new ArrayList<>();
        for (SensitivityRow r : rows) {
            out.add(List.of(Integer.toString(r.k()), layers(r.layers()), first(r.firstChangedLayer()),
                    est(r.quality().top1Agreement()), est(r.quality().meanKl()), est(r.quality().variantPerplexity()),
                    num(r.perplexityRatio(), 4), saving(r)));
        }
        SensitivityRow any = rows.get(0);
        return new Table("Sensitivity: " + mode, any.quality().documents() + " documents, " + any.quality().positions()
                + " predicted positions; baseline perplexity " + est(any.quality().baselinePerplexity())
                + (mode.startsWith("random") ? "; scored one prefix per pass (only a random graph's last position is defined)" : ""),
                List.of("k", "layers changed", "first layer that changes", "top-1 agreement", "mean KL", "perplexity",
                        "ppl variant/baseline", "predicted saving"), out);
    }

    static Table importance(List<SingleLayerImportance.Layer> cos, List<SensitivityRow> drops) {
        int n = cos != null ? cos.size() : drops.size();
        List<List<String>> rows = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            List<String> row = new ArrayList<>(List.of(Integer.toString(i)));
            row.add(cos == null ? "" : num(cos.get(i).attention(), 5));
            row.add(cos == null ? "" : num(cos.get(i).block(), 5));
            SensitivityRow d = drops.isEmpty() ? null : drops.get(i);
            row.add(d == null ? "" : est(d.quality().top1Agreement()));
            row.add(d == null ? "" : est(d.quality().meanKl()));
            row.add(d == null ? "" : num(d.perplexityRatio(), 4));
            rows.add(row);
        }
        return new Table("Single-layer importance", "1 - cos(input, output), mean over tokens, of the attention sub-block "
                + "(LLM-Drop) and of the whole block (ShortGPT's Block Influence); and the measured effect of dropping only "
                + "that layer's attention",
                List.of("layer", "attention 1 - cos", "block 1 - cos", "drop only this: top-1 agreement",
                        "drop only this: mean KL", "drop only this: ppl ratio"), rows);
    }

    static Table representations(List<RepresentationProbe.LayerMetrics> reps) {
        List<List<String>> rows = new ArrayList<>();
        for (var m : reps) {
            rows.add(List.of(Integer.toString(m.layer()), num(m.promptEntropy(), 4), num(m.datasetEntropy(), 4),
                    num(m.curvature(), 4)));
        }
        return new Table("Representation metrics", "stream l = the residual stream entering layer l; the last row is the "
                + "last layer's output",
                List.of("layer", "prompt entropy", "dataset entropy", "curvature (rad)"), rows);
    }

    static Table invariance(List<RepresentationProbe.LayerMetrics> reps) {
        List<List<String>> rows = new ArrayList<>();
        for (var m : reps) {
            m.invariance().forEach((kind, v) -> rows.add(List.of(Integer.toString(m.layer()), kind, num(v.infoNce(), 4),
                    num(v.lidar(), 3), num(v.dime(), 4))));
        }
        return new Table("Augmentation invariance", "between two seeded augmented copies of each prompt, mean-pooled, "
                + "for each augmentation kind; lower InfoNCE and higher LiDAR and DiME: each prompt's copies stay closer "
                + "to each other than to other prompts",
                List.of("layer", "augmentation", "InfoNCE", "LiDAR", "DiME"), rows);
    }

    static Table switchTable(SwitchExperiment.Result s) {
        List<List<String>> rows = new ArrayList<>();
        List<SwitchExperiment.LayerResult> all = new ArrayList<>();
        all.add(s.baseline());
        all.addAll(s.layers());
        for (var r : all) {
            rows.add(List.of(r.layer() < 0 ? "none" : Integer.toString(r.layer()), num(r.followsOriginal(), 3),
                    num(r.followsInjected(), 3), num(r.prefersInjected(), 3), num(r.logProbOriginal(), 3),
                    num(r.logProbInjected(), 3)));
        }
        return new Table("Switch", s.baseline().pairs() + " country pairs; the country's state replaced at the layer's input",
                List.of("layer", "answers original", "answers injected", "prefers injected", "log P(original)",
                        "log P(injected)"), rows);
    }

    public static String saving(SensitivityRow r) {
        List<String> parts = new ArrayList<>();
        if (r.attentionFlopsSavedPerToken() > 0) {
            parts.add(String.format(Locale.ROOT, "attention FLOPs -%,d/token at context %d", r.attentionFlopsSavedPerToken(),
                    r.contextLength()));
        }
        if (r.kvBytesPerTokenAfter() != r.kvBytesPerTokenBefore()) {
            parts.add(String.format(Locale.ROOT, "KV %,d -> %,d B/token", r.kvBytesPerTokenBefore(), r.kvBytesPerTokenAfter()));
        }
        if (r.prefillFractionSaved() > 0) {
            parts.add(String.format(Locale.ROOT, "prefill -%.0f%% of layer compute (all positions but the last)",
                    100 * r.prefillFractionSaved()));
        }
        return parts.isEmpty() ? (r.mode().startsWith("random") ? "none (analysis)" : "none") : String.join(", ", parts);
    }

    private static String layers(List<Integer> layers) {
        return layers.isEmpty() ? "none" : layers.stream().map(String::valueOf).collect(Collectors.joining(","));
    }

    private static String first(int layer) {
        return layer < 0 ? "none" : Integer.toString(layer);
    }

    static String est(Estimate e) {
        int digits = Math.abs(e.value()) >= 100 ? 2 : 4;
        return num(e.value(), digits) + " [" + num(e.low(), digits) + ", " + num(e.high(), digits) + "]";
    }

    static String num(double v, int digits) {
        return Double.isNaN(v) ? "n/a" : String.format(Locale.ROOT, "%." + digits + "f", v);
    }
}
