package org.attnskip.probe;

import org.attnskip.eval.Charts;

import org.knowm.xchart.HeatMapChart;
import org.knowm.xchart.HeatMapChartBuilder;
import org.knowm.xchart.XYChart;

import java.awt.Color;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.ToDoubleFunction;

/**
 * The probe's PNG charts, drawn headless with XChart like the evaluator's: one chart per
 * experiment across layers, and a heat map of every per-layer metric (each row scaled to [0, 1]).
 */
public final class ProbeCharts {
    private static final int WIDTH = 800;
    private static final int HEIGHT = 480;

    private ProbeCharts() {
    }

    public static Map<String, byte[]> of(ProbeReport r) {
        Map<String, byte[]> charts = new LinkedHashMap<>();
        SensitivityProbe.Result s = r.sensitivity();
        if (s != null && !s.curves().isEmpty()) {
            charts.put("sensitivity-top1.png", Charts.png(curves(s, "Top-1 agreement with the baseline against k", "top-1 agreement",
                    SensitivityRow::top1)));
            charts.put("sensitivity-kl.png", Charts.png(curves(s, "Mean KL(baseline || variant) against k", "nats per position",
                    SensitivityRow::kl)));
            charts.put("sensitivity-perplexity.png", Charts.png(curves(s, "Perplexity against k", "variant / baseline",
                    SensitivityRow::perplexityRatio)));
        }
        if (r.importance() != null || (s != null && !s.singleDrops().isEmpty())) {
            XYChart c = Charts.chart("Single-layer importance", "layer", "value");
            if (r.importance() != null && r.importance().stream().noneMatch(l -> Double.isNaN(l.attention()))) {
                c.addSeries("attention 1 - cos", layerAxis(r.importance().size()),
                        r.importance().stream().mapToDouble(SingleLayerImportance.Layer::attention).toArray());
            }
            if (r.importance() != null) {
                c.addSeries("block 1 - cos", layerAxis(r.importance().size()),
                        r.importance().stream().mapToDouble(SingleLayerImportance.Layer::block).toArray());
            }
            if (s != null && !s.singleDrops().isEmpty()) {
                c.addSeries("drop only this layer: KL", layerAxis(s.singleDrops().size()),
                        s.singleDrops().stream().mapToDouble(SensitivityRow::kl).toArray());
                c.addSeries("drop only this layer: 1 - top-1", layerAxis(s.singleDrops().size()),
                        s.singleDrops().stream().mapToDouble(d -> 1 - d.top1()).toArray());
            }
            charts.put("importance.png", Charts.png(c));
        }
        if (r.representations() != null) {
            XYChart c = Charts.chart("Representation metrics", "stream (layer input; last = output)", "value");
            var reps = r.representations();
            double[] x = layerAxis(reps.size());
            c.addSeries("prompt entropy", x, reps.stream().mapToDouble(RepresentationProbe.LayerMetrics::promptEntropy).toArray());
            c.addSeries("dataset entropy", x, reps.stream().mapToDouble(RepresentationProbe.LayerMetrics::datasetEntropy).toArray());
            c.addSeries("curvature (rad)", x, reps.stream().mapToDouble(RepresentationProbe.LayerMetrics::curvature).toArray());
            for (String kind : reps.get(0).invariance().keySet()) {
                c.addSeries("DiME, " + kind, x, reps.stream().mapToDouble(m -> m.invariance().get(kind).dime()).toArray());
            }
            charts.put("representations.png", Charts.png(c));
        }
        if (r.switchExperiment() != null) {
            XYChart c = Charts.chart("Switch: answers by layer of the switch", "layer", "share of pairs");
            var layers = r.switchExperiment().layers();
            double[] x = layerAxis(layers.size());
            c.addSeries("answers original", x, layers.stream().mapToDouble(SwitchExperiment.LayerResult::followsOriginal).toArray());
            c.addSeries("answers injected", x, layers.stream().mapToDouble(SwitchExperiment.LayerResult::followsInjected).toArray());
            c.addSeries("prefers injected", x, layers.stream().mapToDouble(SwitchExperiment.LayerResult::prefersInjected).toArray());
            charts.put("switch.png", Charts.png(c));
        }
        Map<String, double[]> rows = heatRows(r);
        if (!rows.isEmpty()) {
            charts.put("heatmap.png", Charts.png(heatMap(rows)));
        }
        return charts;
    }

    /** metric name -> value per layer 0..L-1 (NaN where missing). */
    static Map<String, double[]> heatRows(ProbeReport r) {
        Map<String, double[]> rows = new LinkedHashMap<>();
        SensitivityProbe.Result s = r.sensitivity();
        if (s != null) {
            s.curves().forEach((mode, curve) -> rows.put(mode + ": top-1 at k = layer",
                    curve.subList(0, curve.size() - 1).stream().mapToDouble(SensitivityRow::top1).toArray()));
            if (!s.singleDrops().isEmpty()) {
                rows.put("drop only this layer: KL", s.singleDrops().stream().mapToDouble(SensitivityRow::kl).toArray());
            }
        }
        if (r.importance() != null) {
            rows.put("attention 1 - cos", r.importance().stream().mapToDouble(SingleLayerImportance.Layer::attention).toArray());
            rows.put("block 1 - cos", r.importance().stream().mapToDouble(SingleLayerImportance.Layer::block).toArray());
        }
        if (r.representations() != null) {
            var reps = r.representations().subList(0, r.representations().size() - 1);
            rows.put("prompt entropy", reps.stream().mapToDouble(RepresentationProbe.LayerMetrics::promptEntropy).toArray());
            rows.put("dataset entropy", reps.stream().mapToDouble(RepresentationProbe.LayerMetrics::datasetEntropy).toArray());
            rows.put("curvature", reps.stream().mapToDouble(RepresentationProbe.LayerMetrics::curvature).toArray());
            for (String kind : reps.get(0).invariance().keySet()) {
                rows.put("InfoNCE, " + kind, reps.stream().mapToDouble(m -> m.invariance().get(kind).infoNce()).toArray());
                rows.put("LiDAR, " + kind, reps.stream().mapToDouble(m -> m.invariance().get(kind).lidar()).toArray());
                rows.put("DiME, " + kind, reps.stream().mapToDouble(m -> m.invariance().get(kind).dime()).toArray());
            }
        }
        if (r.switchExperiment() != null) {
            rows.put("switch: prefers injected", r.switchExperiment().layers().stream()
                    .mapToDouble(SwitchExperiment.LayerResult::prefersInjected).toArray());
        }
        return rows;
    }

    private static HeatMapChart heatMap(Map<String, double[]> rows) {
        int layers = rows.values().stream().mapToInt(v -> v.length).max().orElse(0);
        List<Integer> x = new ArrayList<>();
        for (int i = 0; i < layers; i++) {
            x.add(i);
        }
        List<String> y = new ArrayList<>(rows.keySet());
        List<Number[]> cells = new ArrayList<>();
        int yi = 0;
        for (double[] values : rows.values()) {
            double[] scaled = scaled(values);
            for (int i = 0; i < scaled.length; i++) {
                if (!Double.isNaN(scaled[i])) {
                    cells.add(new Number[] {i, yi, scaled[i]});
                }
            }
            yi++;
        }
        HeatMapChart c = new HeatMapChartBuilder().width(WIDTH + 200).height(Math.max(HEIGHT, 40 * y.size() + 160))
                .title("Metric x layer (each row scaled to its own min..max)").xAxisTitle("layer").build();
        c.getStyler().setMin(0).setMax(1).setRangeColors(new Color[] {new Color(49, 54, 149), new Color(255, 255, 191),
                new Color(165, 0, 38)});
        c.getStyler().setShowValue(false);
        c.addSeries("scaled value", x, y, cells);
        return c;
    }

    /** min..max -> 0..1 (a constant row is 0.5; NaN stays NaN). */
    static double[] scaled(double[] v) {
        double min = Double.POSITIVE_INFINITY;
        double max = Double.NEGATIVE_INFINITY;
        for (double d : v) {
            if (!Double.isNaN(d)) {
                min = Math.min(min, d);
                max = Math.max(max, d);
            }
        }
        double[] out = new double[v.length];
        for (int i = 0; i < v.length; i++) {
            out[i] = Double.isNaN(v[i]) ? Double.NaN : max > min ? (v[i] - min) / (max - min) : 0.5;
        }
        return out;
    }

    private static XYChart curves(SensitivityProbe.Result s, String title, String y, ToDoubleFunction<SensitivityRow> metric) {
        XYChart c = Charts.chart(title, "k (layers >= k manipulated; k = L changes nothing)", y);
        s.curves().forEach((mode, rows) -> c.addSeries(mode, rows.stream().mapToDouble(SensitivityRow::k).toArray(),
                rows.stream().mapToDouble(metric).toArray()));
        return c;
    }

    private static double[] layerAxis(int n) {
        double[] x = new double[n];
        for (int i = 0; i < n; i++) {
            x[i] = i;
        }
        return x;
    }


}
