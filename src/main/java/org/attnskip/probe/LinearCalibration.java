package org.attnskip.probe;

import org.attnskip.layout.DecoderLayout;
import org.attnskip.layout.LayerLayout;
import org.attnskip.layout.LayoutDiscovery;
import org.attnskip.onnx.Graph;
import org.attnskip.onnx.LoadedModel;
import org.attnskip.onnx.OnnxModelIO;
import org.attnskip.reference.AffineMap;
import org.attnskip.rewrite.CompensatedDropPass;
import org.attnskip.rewrite.ExposeResidualStreamPass;
import org.attnskip.rewrite.LayerSelection;
import org.attnskip.runtime.Device;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.function.Consumer;

/**
 * Fits calibrated drop's maps, lowest dropped layer first, each through the model as it will run:
 * for layer i the graph has layers below i that are being dropped already replaced by their fitted
 * maps, and exposes layer i's attention norm output (x) as an output. The target y is
 * <ul>
 *   <li>{@link Target#BRANCH}: layer i's attention branch in that graph, what the sub-block would add
 *       to the stream it gets;</li>
 *   <li>{@link Target#STREAM}: the original model's stream after layer i's attention add minus the
 *       stream entering layer i in that graph, so that the map also undoes the drift that the maps
 *       below left (for the lowest dropped layer both targets are the same).</li>
 * </ul>
 * Every calibration sequence runs as one prefill; the (x, y) rows of all its positions go into a
 * {@link RidgeFit}.
 */
public final class LinearCalibration {
    static final String NORM_TAP = "attnskip.calibration.norm";
    static final String BRANCH_TAP = "attnskip.calibration.branch";
    static final String STREAM_TAP = "attnskip.calibration.stream";

    /** What each map is fitted to reproduce. */
    public enum Target { BRANCH, STREAM }

    /**
     * The default target: STREAM, which measured better on held-out calibration text
     * (docs/BENCHMARKS.md, "Calibrated drop against plain drop"), where every selected layer's arriving
     * stream is a value of the graph; BRANCH where a fused Skip*Norm hides it.
     */
    public static Target defaultTarget(Path baseline, LayerSelection selection) {
        DecoderLayout layout = LayoutDiscovery.discover(OnnxModelIO.load(baseline).graph());
        boolean streams = selection.layers().stream().map(layout::layer)
                .allMatch(l -> l.residualIn() != null && !l.residualIn().isEmpty());
        return streams ? Target.STREAM : Target.BRANCH;
    }

    /** The maps and what they were fitted on, for the model's metadata. */
    public record Calibrated(Map<Integer, AffineMap> maps, String textSha256, long tokens, double ridge, int rank, Target target) {
        public Map<String, String> metadata() {
            Map<String, String> m = new LinkedHashMap<>();
            m.put("compensate", "linear");
            m.put("calibration_sha256", textSha256);
            m.put("calibration_tokens", Long.toString(tokens));
            m.put("ridge", Double.toString(ridge));
            m.put("rank", rank > 0 ? Integer.toString(rank) : "full");
            m.put("calibration_target", target.name().toLowerCase(java.util.Locale.ROOT));
            m.put("params_added", Long.toString(CompensatedDropPass.parametersAdded(maps)));
            return m;
        }
    }

    private LinearCalibration() {
    }

    /**
     * @param rank 0 for full-rank maps, else R in 1..dim-1
     */
    public static Calibrated fit(Path baseline, LayerSelection selection, CalibrationText text, double ridge, int rank,
                                 Target target, Path scratch, Device device, Consumer<String> progress) {
        if (!selection.layers().isEmpty() && CalibrationGraphs.applies(baseline, selection)) {
            return LayerwiseCalibration.fit(baseline, selection, text, ridge, rank, target, scratch, device, progress);
        }
        return fitThroughWholeGraphs(baseline, selection, text, ridge, rank, target, scratch, device, progress);
    }

    /**
     * The fit as described above, each layer's rows from the whole rewritten model (and for the
     * stream target the whole original one): 2n - 1 forward passes and as many model copies for n
     * layers. {@link LayerwiseCalibration} gathers the same rows in about two passes where the
     * graph can be cut at each dropped layer's stream; this serves the graphs that cannot.
     */
    static Calibrated fitThroughWholeGraphs(Path baseline, LayerSelection selection, CalibrationText text, double ridge,
                                            int rank, Target target, Path scratch, Device device, Consumer<String> progress) {
        Map<Integer, AffineMap> maps = new TreeMap<>();
        for (int layer : selection.layers()) {
            Path graph = scratch.resolve("calibrate-layer" + layer + ".onnx");
            Path original = scratch.resolve("calibrate-original-layer" + layer + ".onnx");
            boolean stream = target == Target.STREAM && !maps.isEmpty();
            writeTappedGraph(baseline, layer, maps, stream, graph);
            if (stream) {
                writeTappedGraph(baseline, layer, Map.of(), true, original);
            }
            RidgeFit fit = null;
            try (HiddenStateRunner runner = HiddenStateRunner.openForOutputs(graph, device);
                 HiddenStateRunner originalRunner = stream ? HiddenStateRunner.openForOutputs(original, device) : null) {
                for (int[] sequence : text.sequences()) {
                    Map<String, float[][]> out = runner.outputs(sequence,
                            stream ? List.of(NORM_TAP, BRANCH_TAP, STREAM_TAP) : List.of(NORM_TAP, BRANCH_TAP));
                    float[][] x = out.get(NORM_TAP);
                    float[][] y = out.get(BRANCH_TAP);
                    if (stream) {
                        y = drift(originalRunner.outputs(sequence, List.of(BRANCH_TAP, STREAM_TAP)), out.get(STREAM_TAP));
                    }
                    if (fit == null) {
                        fit = new RidgeFit(x[0].length, y[0].length);
                    }
                    for (int t = 0; t < sequence.length; t++) {
                        fit.add(x[t], y[t]);
                    }
                }
            } finally {
                delete(graph);
                delete(original);
            }
            maps.put(layer, fit.solve(ridge, rank));
            progress.accept("calibrated layer " + layer + " on " + fit.rows() + " tokens");
        }
        return new Calibrated(Collections.unmodifiableMap(maps), text.sha256(), text.tokens(), ridge, rank, target);
    }

    /** The baseline with the maps fitted so far in place and layer's taps exposed (its input stream too when asked). */
    private static void writeTappedGraph(Path baseline, int layer, Map<Integer, AffineMap> fitted, boolean stream, Path out) {
        LoadedModel loaded = OnnxModelIO.load(baseline);
        Graph g = loaded.graph();
        DecoderLayout layout = LayoutDiscovery.discover(g);
        LayerLayout target = layout.layer(layer);
        // exposed first, on the original layout: the pass below edits only the layers below
        ExposeResidualStreamPass.exposeValue(g, layout, target.attention().normOutput(), NORM_TAP);
        ExposeResidualStreamPass.exposeValue(g, layout, target.attention().branchOutput(), BRANCH_TAP);
        if (stream) {
            ExposeResidualStreamPass.exposeValue(g, layout, target.residualIn(), STREAM_TAP);
        }
        if (!fitted.isEmpty()) {
            LayerSelection below = new LayerSelection(null, -1, Collections.unmodifiableSortedSet(new TreeSet<>(fitted.keySet())));
            new CompensatedDropPass(fitted, 0).apply(g, layout, below);
        }
        OnnxModelIO.save(loaded, g.toModel(), out);
    }

    /** The original model's stream after the attention add minus the stream the modified model brings. */
    private static float[][] drift(Map<String, float[][]> original, float[][] modifiedIn) {
        float[][] branch = original.get(BRANCH_TAP);
        float[][] in = original.get(STREAM_TAP);
        float[][] y = new float[in.length][];
        for (int t = 0; t < in.length; t++) {
            y[t] = new float[in[t].length];
            for (int j = 0; j < y[t].length; j++) {
                y[t][j] = in[t][j] + branch[t][j] - modifiedIn[t][j];
            }
        }
        return y;
    }

    private static void delete(Path graph) {
        try {
            Files.deleteIfExists(graph);
            Files.deleteIfExists(graph.resolveSibling(graph.getFileName() + ".data"));
        } catch (IOException ignored) {
            // scratch space; the caller removes the directory
        }
    }
}
