package org.attnskip.eval;

import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.XYSeries;
import org.knowm.xchart.style.markers.SeriesMarkers;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** The PNG charts of the reports, drawn headless with XChart; each returned as PNG bytes by file name. */
public final class Charts {
    private static final int WIDTH = 800;
    private static final int HEIGHT = 480;

    private Charts() {
    }

    /** Median prefill time against prompt length and decode time against context, both models. */
    public static Map<String, byte[]> forEval(EvalReport report) {
        Map<String, byte[]> charts = new LinkedHashMap<>();
        LatencyResult l = report.latency();
        if (l != null && !l.prefill().isEmpty()) {
            charts.put("latency-prefill.png", png(latencyChart("Prefill latency (median)", "prompt tokens", l.prefill())));
        }
        if (l != null && !l.decode().isEmpty()) {
            charts.put("latency-decode.png", png(latencyChart("Decode latency per token (median)", "context tokens", l.decode())));
        }
        return charts;
    }

    private static XYChart latencyChart(String title, String xTitle, List<LatencyPoint> points) {
        XYChart c = chart(title, xTitle, "ms");
        double[] x = points.stream().mapToDouble(LatencyPoint::tokens).toArray();
        c.addSeries("baseline", x, points.stream().mapToDouble(p -> p.baseline().medianMs()).toArray());
        c.addSeries("variant", x, points.stream().mapToDouble(p -> p.variant().medianMs()).toArray());
        return c;
    }

    /** Quality against threshold, latency against threshold, and the Pareto frontier. */
    public static Map<String, byte[]> forSweep(SweepReport report) {
        Map<String, byte[]> charts = new LinkedHashMap<>();
        List<SweepPoint> points = report.points();
        double[] t = points.stream().mapToDouble(SweepPoint::threshold).toArray();

        XYChart quality = chart("Quality against threshold (" + report.mode() + ")", "threshold f (layers >= ceil(f*L) changed)",
                "ratio / share");
        if (points.get(0).text() != null) {
            quality.addSeries("perplexity variant/baseline", t, points.stream().mapToDouble(SweepPoint::perplexityRatio).toArray());
            quality.addSeries("top-1 agreement", t, points.stream().mapToDouble(p -> p.text().top1Agreement().value()).toArray());
        }
        List<TaskResult> firstTasks = points.get(0).tasks();
        for (int k = 0; k < firstTasks.size(); k++) {
            int task = k;
            quality.addSeries("accuracy " + firstTasks.get(k).task(), t,
                    points.stream().mapToDouble(p -> p.tasks().get(task).variantAccuracy().value()).toArray());
        }
        if (!quality.getSeriesMap().isEmpty()) {
            charts.put("sweep-quality.png", png(quality));
        }

        if (points.get(0).latency() != null) {
            XYChart latency = chart("Latency against threshold (" + report.mode() + ")", "threshold f", "variant / baseline (median)");
            latency.addSeries("prefill ratio", t, points.stream().mapToDouble(SweepPoint::prefillRatio).toArray());
            latency.addSeries("decode ratio", t, points.stream().mapToDouble(SweepPoint::decodeRatio).toArray());
            charts.put("sweep-latency.png", png(latency));

            boolean decode = report.latencyAxis().startsWith("decode");
            XYChart pareto = chart("Quality-latency trade-off (" + report.mode() + ")",
                    report.latencyAxis() + " latency, variant / baseline", "perplexity, variant / baseline");
            XYSeries all = pareto.addSeries("thresholds", points.stream().mapToDouble(p -> decode ? p.decodeRatio() : p.prefillRatio()).toArray(),
                    points.stream().mapToDouble(SweepPoint::perplexityRatio).toArray());
            all.setXYSeriesRenderStyle(XYSeries.XYSeriesRenderStyle.Scatter);
            List<SweepPoint> front = new ArrayList<>();
            for (SweepPoint p : points) {
                if (report.paretoThresholds().contains(p.threshold())) {
                    front.add(p);
                }
            }
            front.sort((a, b) -> Double.compare(decode ? a.decodeRatio() : a.prefillRatio(), decode ? b.decodeRatio() : b.prefillRatio()));
            XYSeries frontier = pareto.addSeries("Pareto frontier", front.stream().mapToDouble(p -> decode ? p.decodeRatio() : p.prefillRatio()).toArray(),
                    front.stream().mapToDouble(SweepPoint::perplexityRatio).toArray());
            frontier.setMarker(SeriesMarkers.NONE);
            if (report.recommendedThreshold() != null) {
                SweepPoint r = points.stream().filter(p -> p.threshold() == report.recommendedThreshold()).findFirst().orElseThrow();
                XYSeries rec = pareto.addSeries("recommended f=" + r.threshold(), new double[] {decode ? r.decodeRatio() : r.prefillRatio()},
                        new double[] {r.perplexityRatio()});
                rec.setXYSeriesRenderStyle(XYSeries.XYSeriesRenderStyle.Scatter);
                rec.setMarker(SeriesMarkers.DIAMOND);
            }
            charts.put("sweep-pareto.png", png(pareto));
        }
        return charts;
    }

    /**
     * Mean KL and top-1 agreement against threshold for several sweeps of one model over the same
     * thresholds (calibrated drop with plain drop and freeze), one series per sweep on each chart.
     */
    public static Map<String, byte[]> forSweepModes(Map<String, SweepReport> sweeps) {
        Map<String, byte[]> charts = new LinkedHashMap<>();
        if (sweeps.values().stream().anyMatch(r -> r.points().get(0).text() == null)) {
            return charts;
        }
        XYChart kl = chart("Mean KL(baseline || variant) against threshold", "threshold f (layers >= ceil(f*L) changed)",
                "nats per position");
        XYChart top1 = chart("Top-1 agreement against threshold", "threshold f (layers >= ceil(f*L) changed)", "top-1 agreement");
        sweeps.forEach((name, r) -> {
            double[] t = r.points().stream().mapToDouble(SweepPoint::threshold).toArray();
            kl.addSeries(name, t, r.points().stream().mapToDouble(p -> p.text().meanKl().value()).toArray());
            top1.addSeries(name, t, r.points().stream().mapToDouble(p -> p.text().top1Agreement().value()).toArray());
        });
        charts.put("sweep-modes-kl.png", png(kl));
        charts.put("sweep-modes-top1.png", png(top1));
        return charts;
    }

    /** An XY chart in the reports' common style. */
    public static XYChart chart(String title, String x, String y) {
        XYChart c = new XYChartBuilder().width(WIDTH).height(HEIGHT).title(title).xAxisTitle(x).yAxisTitle(y).build();
        c.getStyler().setMarkerSize(7);
        // ratios and metrics read best with three decimals, not the full double
        c.getStyler().setXAxisDecimalPattern("0.###");
        c.getStyler().setYAxisDecimalPattern("0.###");
        return c;
    }

    /** A chart as PNG bytes, drawn headless. */
    public static byte[] png(org.knowm.xchart.internal.chartpart.Chart<?, ?> chart) {
        System.setProperty("java.awt.headless", "true");
        try {
            return BitmapEncoder.getBitmapBytes(chart, BitmapEncoder.BitmapFormat.PNG);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot draw chart: " + e.getMessage(), e);
        }
    }
}
