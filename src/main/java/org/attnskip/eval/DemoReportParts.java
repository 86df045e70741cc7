package org.attnskip.eval;

import org.knowm.xchart.CategoryChart;
import org.knowm.xchart.CategoryChartBuilder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYSeries;
import org.knowm.xchart.style.markers.SeriesMarkers;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** The demo report's tables and charts, built from the sweeps' own tables and numbers. */
public final class DemoReportParts {
    private DemoReportParts() {
    }

    public static List<ReportTables.Table> tables(DemoReport r) {
        List<ReportTables.Table> tables = new ArrayList<>();
        tables.add(headlineQuality(r));
        if (r.latencyDrop() != null) {
            tables.add(latency(r));
        }
        for (SweepReport sweep : List.of(r.qualityDrop(), r.qualityFreeze())) {
            ReportTables.Table t = ReportTables.forSweep(sweep).get(1);
            // no latency was timed on this model, so the sweep's Pareto marks and recommendation say nothing here
            List<List<String>> rows = t.rows().stream().map(row -> {
                List<String> copy = new ArrayList<>(row);
                copy.set(0, copy.get(0).replace(" (recommended)", "").replace(" (Pareto)", ""));
                return (List<String>) copy;
            }).toList();
            GenerationAgreement g = sweep.points().get(0).generation();
            String note = "quality only, " + sweepNote(sweep.points().get(0)) + (g == null ? "" : "; greedy generation: "
                    + g.prompts() + " prompts of " + g.promptTokens() + " tokens, " + g.newTokens() + " new tokens each");
            tables.add(new ReportTables.Table("Sweep: " + sweep.mode() + " on " + r.qualityModel(), note, t.header(), rows));
        }
        ReportTables.Table setup = ReportTables.forSweep(r.qualityDrop()).get(0);
        tables.add(new ReportTables.Table("Setup (quality)", null, setup.header(), setup.rows()));
        if (r.latencyDrop() != null) {
            setup = ReportTables.forSweep(r.latencyDrop()).get(0);
            tables.add(new ReportTables.Table("Setup (latency)", null, setup.header(), setup.rows()));
        }
        return tables;
    }

    /** Baseline, drop and freeze side by side at the headline thresholds, every number with its interval. */
    private static ReportTables.Table headlineQuality(DemoReport r) {
        SweepPoint drop = r.quality(true);
        SweepPoint freeze = r.quality(false);
        String d = "drop " + DemoSummary.f(r.headlineDrop()) + " (layers " + drop.layers() + ")";
        String fz = "freeze " + DemoSummary.f(r.headlineFreeze()) + " (layers " + freeze.layers() + ")";
        List<List<String>> rows = new ArrayList<>();
        if (drop.text() != null) {
            TextQuality td = drop.text();
            TextQuality tf = freeze.text();
            rows.add(List.of("perplexity", ReportTables.est(td.baselinePerplexity()), ReportTables.est(td.variantPerplexity()),
                    ReportTables.est(tf.variantPerplexity())));
            rows.add(List.of("perplexity, variant - baseline", "0", ReportTables.est(td.perplexityDifference()),
                    ReportTables.est(tf.perplexityDifference())));
            rows.add(List.of("top-1 agreement with baseline", "1", ReportTables.est(td.top1Agreement()),
                    ReportTables.est(tf.top1Agreement())));
            rows.add(List.of("mean KL(baseline || variant), nats", "0", ReportTables.est(td.meanKl()), ReportTables.est(tf.meanKl())));
        }
        for (int i = 0; i < drop.tasks().size(); i++) {
            TaskResult a = drop.tasks().get(i);
            TaskResult b = freeze.tasks().get(i);
            rows.add(List.of(a.task() + " accuracy (" + a.items() + " items)", ReportTables.est(a.baselineAccuracy()),
                    ReportTables.est(a.variantAccuracy()), ReportTables.est(b.variantAccuracy())));
            rows.add(List.of(a.task() + " accuracy, variant - baseline", "0", ReportTables.est(a.accuracyDifference()),
                    ReportTables.est(b.accuracyDifference())));
        }
        if (drop.generation() != null && freeze.generation() != null) {
            rows.add(List.of("greedy: identical leading tokens of " + drop.generation().newTokens(),
                    Integer.toString(drop.generation().newTokens()), ReportTables.est(drop.generation().exactPrefixTokens()),
                    ReportTables.est(freeze.generation().exactPrefixTokens())));
            rows.add(List.of("greedy: ROUGE-L F1 against the baseline", "1", ReportTables.est(drop.generation().rougeL()),
                    ReportTables.est(freeze.generation().rougeL())));
        }
        String note = r.qualityModel() + "; the points of the sweeps below at these thresholds (" + sweepNote(drop) + ")";
        return new ReportTables.Table("Quality kept at the headline thresholds", note, List.of("metric", "baseline", d, fz), rows);
    }

    private static String sweepNote(SweepPoint p) {
        return p.text() == null ? "no text scored" : p.text().documents() + " documents, " + p.text().positions()
                + " predicted positions; 95% bootstrap intervals, paired for the differences";
    }

    private static ReportTables.Table latency(DemoReport r) {
        List<List<String>> rows = new ArrayList<>();
        for (SweepReport sweep : List.of(r.latencyDrop(), r.latencyFreeze())) {
            for (SweepPoint p : sweep.points()) {
                LatencyResult l = p.latency();
                LatencyPoint prefill = l.prefill().get(l.prefill().size() - 1);
                LatencyPoint decode = l.decode().get(l.decode().size() - 1);
                rows.add(List.of(sweep.mode() + " " + DemoSummary.f(p.threshold()) + (p.layers().isEmpty() ? " (identical graph: noise floor)" : ""),
                        p.layers().isEmpty() ? "none" : p.layers().toString(),
                        ReportTables.num(prefill.baseline().medianMs(), 2) + " -> " + ReportTables.num(prefill.variant().medianMs(), 2)
                                + " ms (x" + ReportTables.num(prefill.ratio(), 3) + ")",
                        ReportTables.num(decode.baseline().medianMs(), 2) + " -> " + ReportTables.num(decode.variant().medianMs(), 2)
                                + " ms (x" + ReportTables.num(decode.ratio(), 3) + ")",
                        ReportTables.bytes(l.baselineKvBytes()) + " -> " + ReportTables.bytes(l.variantKvBytes())));
            }
        }
        LatencyResult any = r.latencyDrop().points().get(0).latency();
        String note = "on " + r.latencyModel() + ", not the trained model: its shape gives attention a real share of the work. "
                + "Medians of " + any.repeats() + " repetitions after " + any.warmup()
                + " warm-up, baseline and variant interleaved in one process";
        return new ReportTables.Table("Latency", note, List.of("variant", "layers changed",
                "prefill " + any.prefill().get(any.prefill().size() - 1).tokens() + " tokens",
                "decode per token at context " + any.decode().get(any.decode().size() - 1).tokens(),
                "KV cache at " + any.largestContext() + " positions"), rows);
    }

    public static Map<String, byte[]> charts(DemoReport r) {
        Map<String, byte[]> charts = new LinkedHashMap<>();
        if (r.quality(true).text() != null) {
            charts.put("demo-quality.png", Charts.png(qualityCurve(r)));
        }
        if (r.latencyDrop() != null) {
            charts.put("demo-latency.png", Charts.png(latencyBars(r)));
        }
        return charts;
    }

    /** Top-1 agreement of drop and freeze against the threshold: the paper's curve in one picture. */
    private static XYChart qualityCurve(DemoReport r) {
        int layers = DemoSummary.layerCount(r.qualityDrop());
        XYChart c = Charts.chart("Quality kept against threshold: " + r.qualityModel().split(" \\(")[0],
                "threshold f (layers >= ceil(f * " + layers + ") manipulated; 1 = none)", "top-1 agreement with the baseline");
        for (SweepReport sweep : List.of(r.qualityDrop(), r.qualityFreeze())) {
            List<SweepPoint> points = sweep.points().stream()
                    .sorted((a, b) -> Double.compare(a.threshold(), b.threshold())).toList();
            c.addSeries(sweep.mode(), points.stream().mapToDouble(SweepPoint::threshold).toArray(),
                    points.stream().mapToDouble(p -> p.text().top1Agreement().value()).toArray());
        }
        SweepPoint d = r.quality(true);
        SweepPoint f = r.quality(false);
        XYSeries headline = c.addSeries("headline (drop " + DemoSummary.f(r.headlineDrop()) + ", freeze "
                        + DemoSummary.f(r.headlineFreeze()) + ")", new double[] {d.threshold(), f.threshold()},
                new double[] {d.text().top1Agreement().value(), f.text().top1Agreement().value()});
        headline.setXYSeriesRenderStyle(XYSeries.XYSeriesRenderStyle.Scatter);
        headline.setMarker(SeriesMarkers.DIAMOND);
        c.getStyler().setYAxisMin(0.0);
        c.getStyler().setYAxisMax(1.0);
        return c;
    }

    /** Variant/baseline median ratios of the latency model's headline points. */
    private static CategoryChart latencyBars(DemoReport r) {
        CategoryChart c = new CategoryChartBuilder().width(800).height(480)
                .title("Latency, variant / baseline (" + r.latencyModel().split(" \\(")[0] + ")")
                .xAxisTitle("variant").yAxisTitle("median time, variant / baseline").build();
        c.getStyler().setYAxisDecimalPattern("0.###");
        List<String> names = new ArrayList<>();
        List<Double> prefill = new ArrayList<>();
        List<Double> decode = new ArrayList<>();
        for (SweepReport sweep : List.of(r.latencyDrop(), r.latencyFreeze())) {
            for (SweepPoint p : sweep.points()) {
                names.add(p.layers().isEmpty() ? "identical graph (noise floor)" : sweep.mode() + " " + DemoSummary.f(p.threshold()));
                prefill.add(p.prefillRatio());
                decode.add(p.decodeRatio());
            }
        }
        c.addSeries("prefill", names, prefill);
        c.addSeries("decode per token", names, decode);
        return c;
    }
}
