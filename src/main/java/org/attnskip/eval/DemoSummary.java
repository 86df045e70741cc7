package org.attnskip.eval;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * The five lines that open the demo's output and its report: what was rewritten, the quality it
 * kept, the time and the KV memory it saved, and where the report is.
 */
public final class DemoSummary {
    private DemoSummary() {
    }

    public static List<String> lines(DemoReport r, String reportLocation) {
        List<String> lines = new ArrayList<>();
        SweepPoint drop = r.quality(true);
        SweepPoint freeze = r.quality(false);
        int layers = layerCount(r.qualityDrop());
        lines.add("rewritten   " + r.qualityModel() + ": drop " + f(r.headlineDrop()) + " removes attention in layers "
                + span(drop) + " of " + layers + "; freeze " + f(r.headlineFreeze()) + " gives layers " + span(freeze)
                + " K/V from the stream at layer " + (freeze.layers().isEmpty() ? "-" : freeze.layers().get(0)) + "'s input");
        if (drop.text() != null) {
            lines.add("quality     drop " + f(r.headlineDrop()) + ": " + quality(drop) + "; freeze " + f(r.headlineFreeze())
                    + ": " + quality(freeze) + " (" + drop.text().documents() + " stories)");
        } else {
            lines.add("quality     not measured: no text to score");
        }
        if (r.latencyDrop() != null) {
            SweepPoint ld = r.latency(true);
            SweepPoint lf = r.latency(false);
            // the identical graph's ratios say how far the others can be trusted on this machine
            String floor = r.latencyDrop().points().stream().filter(p -> p.layers().isEmpty()).findFirst()
                    .map(p -> String.format(Locale.ROOT, "; identical graphs: x%.3f, x%.3f (noise floor)", p.decodeRatio(),
                            p.prefillRatio())).orElse("");
            lines.add("time saved  on " + r.latencyModel() + ": drop " + f(r.headlineDrop()) + " decode " + ratio(ld.decodeRatio())
                    + " per token at context " + last(ld.latency().decode()) + "; freeze " + f(r.headlineFreeze()) + " prefill "
                    + ratio(lf.prefillRatio()) + " at " + last(lf.latency().prefill()) + " tokens" + floor);
            lines.add("KV memory   drop " + f(r.headlineDrop()) + " keeps the cache of " + (layers - drop.layers().size()) + " of "
                    + layers + " layers: " + ReportTables.bytes(ld.latency().baselineKvBytes()) + " -> "
                    + ReportTables.bytes(ld.latency().variantKvBytes()) + " per sequence at " + ld.latency().largestContext()
                    + " positions (latency model); freeze keeps every cache");
        } else {
            lines.add("time saved  not measured (--no-latency)");
            lines.add("KV memory   drop " + f(r.headlineDrop()) + " keeps the cache of " + (layers - drop.layers().size()) + " of "
                    + layers + " layers; freeze keeps every cache");
        }
        lines.add("report      " + reportLocation);
        return lines;
    }

    /** Layers are k..L-1 at any threshold below 1, so the deepest point of the sweep names L. */
    static int layerCount(SweepReport sweep) {
        return sweep.points().stream().flatMap(p -> p.layers().stream()).mapToInt(Integer::intValue).max().orElse(-1) + 1;
    }

    private static String quality(SweepPoint p) {
        TextQuality t = p.text();
        return "top-1 agreement " + ReportTables.est(t.top1Agreement()) + ", perplexity "
                + ReportTables.num(t.baselinePerplexity().value(), 2) + " -> " + ReportTables.num(t.variantPerplexity().value(), 2);
    }

    private static String span(SweepPoint p) {
        List<Integer> l = p.layers();
        if (l.isEmpty()) {
            return "none";
        }
        return l.size() == 1 ? l.get(0).toString() : l.get(0) + "-" + l.get(l.size() - 1);
    }

    private static String ratio(double r) {
        long percent = Math.round(Math.abs(1 - r) * 100);
        return String.format(Locale.ROOT, "x%.3f (%d%% %s)", r, percent, r <= 1 ? "less" : "more");
    }

    private static int last(List<LatencyPoint> points) {
        return points.get(points.size() - 1).tokens();
    }

    /** A threshold as the user typed it: 0.6, 0.25, 1. */
    static String f(double threshold) {
        return java.math.BigDecimal.valueOf(threshold).stripTrailingZeros().toPlainString();
    }
}
