package org.attnskip.probe;

import org.attnskip.reference.AffineMap;
import org.attnskip.rewrite.LayerSelection;
import org.attnskip.runtime.DecoderIo;
import org.attnskip.runtime.Device;
import org.attnskip.runtime.StreamSegmentRunner;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.function.Consumer;
import java.util.stream.Stream;

/**
 * {@link LinearCalibration}'s fit at the cost of about two forward passes, whatever the number of
 * dropped layers: the same (x, y) rows, gathered without rewriting and rerunning the whole model
 * for each layer.
 * <ol>
 *   <li>The original model runs once over the text ({@link CalibrationGraphs#original}). It gives
 *       the lowest dropped layer's rows (no map is below it yet, so that graph is the model as it
 *       will run there), the stream entering that layer, and, for the stream target, every higher
 *       dropped layer's original stream after its attention add.</li>
 *   <li>Each higher dropped layer j then runs a segment ({@link CalibrationGraphs#segment}): from
 *       the stream entering the dropped layer p below it, which the previous step left in a spool,
 *       through p with its fitted map and the layers up to j. The stream entering p is the same in
 *       every graph of the whole-graph fit that has p's map below j, so the segment sees what that
 *       graph sees.</li>
 * </ol>
 * The rows of one sequence at a time live in the heap; streams wait in scratch files ({@link RowSpool},
 * 4 bytes x hidden per token each) and the weights stay ONNX Runtime's (linked, not written).
 */
final class LayerwiseCalibration {
    private LayerwiseCalibration() {
    }

    static LinearCalibration.Calibrated fit(Path baseline, LayerSelection selection, CalibrationText text, double ridge,
                                            int rank, LinearCalibration.Target target, Path scratch, Device device,
                                            Consumer<String> progress) {
        Path dir;
        try {
            dir = Files.createTempDirectory(scratch, "calibrate");
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        List<Integer> layers = new ArrayList<>(selection.layers());
        boolean stream = target == LinearCalibration.Target.STREAM;
        Map<Integer, RowSpool> originalSums = new HashMap<>();
        RowSpool entering = null;
        try {
            CalibrationGraphs graphs = new CalibrationGraphs(baseline, dir);
            Map<Integer, AffineMap> maps = new TreeMap<>();
            int first = layers.get(0);
            List<Integer> higher = layers.subList(1, layers.size());

            List<String> names = new ArrayList<>(List.of(CalibrationGraphs.normTap(first), CalibrationGraphs.branchTap(first),
                    CalibrationGraphs.streamTap(first)));
            if (stream) {
                for (int j : higher) {
                    names.add(CalibrationGraphs.streamTap(j));
                    names.add(CalibrationGraphs.branchTap(j));
                }
            }
            Clock clock = new Clock();
            Path original = graphs.original(new TreeSet<>(stream ? layers : List.of(first)));
            RidgeFit fit = null;
            try (HiddenStateRunner runner = HiddenStateRunner.openForOutputs(original, device)) {
                for (int[] sequence : text.sequences()) {
                    long start = System.nanoTime();
                    Map<String, float[][]> out = runner.outputs(sequence, names);
                    clock.ran(start);
                    float[][] x = out.get(CalibrationGraphs.normTap(first));
                    fit = add(fit, x, out.get(CalibrationGraphs.branchTap(first)), sequence.length, clock);
                    int width = x[0].length;
                    if (!higher.isEmpty()) {
                        if (entering == null) {
                            entering = new RowSpool(dir.resolve("stream-" + first), width);
                        }
                        entering.write(out.get(CalibrationGraphs.streamTap(first)));
                    }
                    if (stream) {
                        for (int j : higher) {
                            originalSums.computeIfAbsent(j, l -> new RowSpool(dir.resolve("original-" + l), width))
                                    .write(sum(out.get(CalibrationGraphs.streamTap(j)), out.get(CalibrationGraphs.branchTap(j))));
                        }
                    }
                }
            }
            delete(original);
            maps.put(first, solved(fit, ridge, rank, first, progress, clock));

            DecoderIo io = DecoderIo.discover(baseline);
            int previous = first;
            for (int j : higher) {
                List<String> tapNames = List.of(CalibrationGraphs.normTap(j), CalibrationGraphs.branchTap(j),
                        CalibrationGraphs.streamTap(j));
                boolean last = j == layers.get(layers.size() - 1);
                Path segment = graphs.segment(previous, maps.get(previous), j);
                RowSpool next = null;
                fit = null;
                try (StreamSegmentRunner runner = StreamSegmentRunner.open(segment, io, CalibrationGraphs.STREAM_INPUT, device)) {
                    for (int[] sequence : text.sequences()) {
                        float[][] arriving = entering.read(sequence.length);
                        long start = System.nanoTime();
                        Map<String, float[][]> out = runner.outputs(sequence, arriving, tapNames);
                        clock.ran(start);
                        float[][] x = out.get(CalibrationGraphs.normTap(j));
                        float[][] in = out.get(CalibrationGraphs.streamTap(j));
                        float[][] y = stream ? drift(originalSums.get(j).read(sequence.length), in)
                                : out.get(CalibrationGraphs.branchTap(j));
                        fit = add(fit, x, y, sequence.length, clock);
                        if (!last) {
                            if (next == null) {
                                next = new RowSpool(dir.resolve("stream-" + j), in[0].length);
                            }
                            next.write(in);
                        }
                    }
                }
                delete(segment);
                entering.close();
                entering = next;
                if (stream) {
                    originalSums.remove(j).close();
                }
                maps.put(j, solved(fit, ridge, rank, j, progress, clock));
                previous = j;
            }
            return new LinearCalibration.Calibrated(Collections.unmodifiableMap(maps), text.sha256(), text.tokens(), ridge,
                    rank, target);
        } finally {
            if (entering != null) {
                entering.close();
            }
            originalSums.values().forEach(RowSpool::close);
            deleteTree(dir);
        }
    }

    private static RidgeFit add(RidgeFit fit, float[][] x, float[][] y, int positions, Clock clock) {
        long start = System.nanoTime();
        RidgeFit f = fit != null ? fit : new RidgeFit(x[0].length, y[0].length);
        for (int t = 0; t < positions; t++) {
            f.add(x[t], y[t]);
        }
        clock.accumulated(start);
        return f;
    }

    private static AffineMap solved(RidgeFit fit, double ridge, int rank, int layer, Consumer<String> progress, Clock clock) {
        long start = System.nanoTime();
        AffineMap map = fit.solve(ridge, rank);
        progress.accept("calibrated layer " + layer + " on " + fit.rows() + " tokens " + clock.report(start));
        return map;
    }

    /** Where a layer's time went, for the progress line: model runs, adding rows to the sums, solving. */
    private static final class Clock {
        private long runs;
        private long sums;

        void ran(long start) {
            runs += System.nanoTime() - start;
        }

        void accumulated(long start) {
            sums += System.nanoTime() - start;
        }

        /** This layer's times; the counters start again for the next. */
        String report(long solveStart) {
            String s = String.format(java.util.Locale.ROOT, "(ONNX Runtime %.1f s, sums %.1f s, solve %.1f s)", runs / 1e9,
                    sums / 1e9, (System.nanoTime() - solveStart) / 1e9);
            runs = 0;
            sums = 0;
            return s;
        }
    }

    /** The original stream after the attention add, rounded to float as the whole-graph fit adds it. */
    private static float[][] sum(float[][] in, float[][] branch) {
        float[][] s = new float[in.length][];
        for (int t = 0; t < in.length; t++) {
            s[t] = new float[in[t].length];
            for (int j = 0; j < s[t].length; j++) {
                s[t][j] = in[t][j] + branch[t][j];
            }
        }
        return s;
    }

    /** The stream target: the original stream after the attention add minus the stream the calibrated model brings. */
    private static float[][] drift(float[][] originalSum, float[][] modifiedIn) {
        float[][] y = new float[originalSum.length][];
        for (int t = 0; t < originalSum.length; t++) {
            y[t] = new float[originalSum[t].length];
            for (int j = 0; j < y[t].length; j++) {
                y[t][j] = originalSum[t][j] - modifiedIn[t][j];
            }
        }
        return y;
    }

    private static void delete(Path graph) {
        try {
            Files.deleteIfExists(graph);
        } catch (IOException ignored) {
            // scratch space; removed with its folder
        }
    }

    private static void deleteTree(Path dir) {
        try (Stream<Path> all = Files.walk(dir)) {
            all.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        } catch (IOException ignored) {
            // leftovers in the scratch folder are removed with it by the caller
        }
    }
}
