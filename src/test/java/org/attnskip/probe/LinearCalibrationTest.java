package org.attnskip.probe;

import org.attnskip.export.ExportDtype;
import org.attnskip.export.LlamaConfig;
import org.attnskip.export.LlamaOnnxExporter;
import org.attnskip.export.LlamaWeights;
import org.attnskip.export.TestLlamaWeights;
import org.attnskip.onnx.OnnxModelIO;
import org.attnskip.reference.AffineMap;
import org.attnskip.rewrite.LayerSelection;
import org.attnskip.runtime.Device;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class LinearCalibrationTest {
    @TempDir
    Path tmp;

    /**
     * A one-token sequence attends only to itself, so its attention branch is exactly affine in the
     * norm output: y = Wo (Wv x + bv), each query head reading its group's value head. Calibrating on
     * every token alone (ridge 0) must therefore recover M = (Wo Wv)^T and b = Wo bv, computed here
     * from the weights, in each dropped layer: the upper layer sees the lower one already replaced,
     * and as that replacement is exact for such sequences its fit is exact too. So is the stream
     * target's: no drift is left to undo.
     */
    @ParameterizedTest
    @EnumSource(LinearCalibration.Target.class)
    void oneTokenSequencesRecoverTheValueOutputProductInEveryDroppedLayer(LinearCalibration.Target target) {
        LlamaConfig config = TestLlamaWeights.config(48, 96, 4, 6, 2, 97, 64, false, true);
        LlamaWeights w = TestLlamaWeights.random(config, 11);
        Path model = tmp.resolve("gqa.onnx");
        OnnxModelIO.save(LlamaOnnxExporter.export(w, ExportDtype.FLOAT), null, model, false);
        List<int[]> sequences = new ArrayList<>();
        for (int token = 0; token < config.vocabSize(); token++) {
            sequences.add(new int[] {token});
        }
        CalibrationText text = new CalibrationText(model, "test", sequences, sequences.size());
        LayerSelection selection = LayerSelection.fromLayer(2, 4);

        LinearCalibration.Calibrated c = LinearCalibration.fit(model, selection, text, 0.0, 0, target, tmp, Device.CPU,
                line -> { });

        assertEquals(selection.layers(), c.maps().keySet());
        for (Map.Entry<Integer, AffineMap> e : c.maps().entrySet()) {
            LlamaWeights.Layer layer = w.layers[e.getKey()];
            int dim = config.dim();
            int headSize = config.headDim();
            int group = config.heads() / config.kvHeads();
            double worst = 0;
            for (int out = 0; out < dim; out++) {
                double bias = 0;
                for (int j = 0; j < dim; j++) {
                    int kvRow = (j / headSize / group) * headSize + j % headSize;
                    bias += layer.wo()[out * dim + j] * layer.bv()[kvRow];
                }
                worst = Math.max(worst, Math.abs(bias - e.getValue().bias()[out]));
                for (int in = 0; in < dim; in++) {
                    double m = 0;
                    for (int j = 0; j < dim; j++) {
                        int kvRow = (j / headSize / group) * headSize + j % headSize;
                        m += layer.wo()[out * dim + j] * layer.wv()[kvRow * dim + in];
                    }
                    worst = Math.max(worst, Math.abs(m - e.getValue().first()[in * dim + out]));
                }
            }
            System.out.printf("%s layer %d: max abs(fitted - Wo Wv) %.2e%n", target, e.getKey(), worst);
            assertTrue(worst < 1e-5, "layer " + e.getKey() + ": max |fitted - Wo Wv| = " + worst);
        }
        assertEquals(97, c.tokens());
        assertEquals("0.0", c.metadata().get("ridge"));
    }

    /**
     * The layer-by-layer fit (one pass of the original model, then one segment per higher dropped
     * layer fed the stored stream) gathers the rows the whole-graph fit gathers, so on multi-token
     * sequences, where the maps are no longer exact, both give the same maps up to float rounding:
     * for a contiguous selection and for one with an undropped layer between two dropped ones.
     */
    @ParameterizedTest
    @EnumSource(LinearCalibration.Target.class)
    void layerwiseFitGivesTheWholeGraphFitsMaps(LinearCalibration.Target target) {
        LlamaConfig config = TestLlamaWeights.config(48, 96, 5, 6, 2, 97, 64, false, true);
        Path model = tmp.resolve("gqa5.onnx");
        OnnxModelIO.save(LlamaOnnxExporter.export(TestLlamaWeights.random(config, 5), ExportDtype.FLOAT), null, model, false);
        java.util.SplittableRandom random = new java.util.SplittableRandom(7);
        List<int[]> sequences = new ArrayList<>();
        long tokens = 0;
        for (int s = 0; s < 12; s++) {
            int[] seq = random.ints(3 + random.nextInt(40), 0, config.vocabSize()).toArray();
            sequences.add(seq);
            tokens += seq.length;
        }
        CalibrationText text = new CalibrationText(model, "test", sequences, tokens);
        for (LayerSelection selection : List.of(LayerSelection.fromLayer(2, 5),
                new LayerSelection(null, -1, new java.util.TreeSet<>(List.of(1, 3, 4))))) {
            assertTrue(CalibrationGraphs.applies(model, selection), "the exported graph cuts at every stream");
            Map<Integer, AffineMap> layerwise = LayerwiseCalibration.fit(model, selection, text, 0.01, 0, target, tmp,
                    Device.CPU, line -> { }).maps();
            Map<Integer, AffineMap> whole = LinearCalibration.fitThroughWholeGraphs(model, selection, text, 0.01, 0, target,
                    tmp, Device.CPU, line -> { }).maps();
            assertEquals(whole.keySet(), layerwise.keySet());
            for (int layer : whole.keySet()) {
                double worst = Math.max(maxAbsDelta(whole.get(layer).first(), layerwise.get(layer).first()),
                        maxAbsDelta(whole.get(layer).bias(), layerwise.get(layer).bias()));
                double scale = maxAbs(whole.get(layer).first());
                System.out.printf("%s %s layer %d: max |layerwise - whole graph| %.2e (entries up to %.2e)%n", target,
                        selection.layers(), layer, worst, scale);
                assertTrue(scale > 1e-3, "the map is not trivially zero");
                assertTrue(worst < 1e-5 * Math.max(1, scale), "layer " + layer + ": " + worst);
            }
        }
    }

    /**
     * The same comparison on the trained fixtures, calibrated on the shared stories as the quality
     * table of docs/BENCHMARKS.md ("Calibrated drop against plain drop") is (here 2,000 tokens):
     * stories260K with its top 3 of 5 layers dropped and stories-deep12 with its top 4 of 12, default
     * (stream) target.
     */
    @ParameterizedTest
    @org.junit.jupiter.params.provider.CsvSource({"stories260K, 2", "stories-deep12, 8"})
    void layerwiseFitGivesTheWholeGraphFitsMapsOnTheStoriesModels(String name, int k) {
        Path folder = org.attnskip.Fixtures.model(name);
        Path model = tmp.resolve(name);
        org.attnskip.CliRun export = org.attnskip.CliRun.of("export", "--llama2c", folder.resolve(name + ".bin").toString(),
                "--tokenizer", folder.resolve("tok512.bin").toString(), "-o", model.toString());
        assertEquals(0, export.code(), export.err());
        CalibrationText text = CalibrationText.read(org.attnskip.Fixtures.require("data/stories260K-samples.jsonl"),
                org.attnskip.runtime.Llama2cTokenizer.load(folder.resolve("tok512.bin")), 2000, 256);
        int layers = name.equals("stories260K") ? 5 : 12;
        LayerSelection selection = LayerSelection.fromLayer(k, layers);
        assertTrue(CalibrationGraphs.applies(model, selection));
        Map<Integer, AffineMap> layerwise = LayerwiseCalibration.fit(model, selection, text, 0.01, 0,
                LinearCalibration.Target.STREAM, tmp, Device.CPU, line -> { }).maps();
        Map<Integer, AffineMap> whole = LinearCalibration.fitThroughWholeGraphs(model, selection, text, 0.01, 0,
                LinearCalibration.Target.STREAM, tmp, Device.CPU, line -> { }).maps();
        for (int layer : whole.keySet()) {
            double worst = Math.max(maxAbsDelta(whole.get(layer).first(), layerwise.get(layer).first()),
                    maxAbsDelta(whole.get(layer).bias(), layerwise.get(layer).bias()));
            double scale = maxAbs(whole.get(layer).first());
            System.out.printf("%s layer %d: max |layerwise - whole graph| %.2e (entries up to %.2e)%n", name, layer, worst,
                    scale);
            assertTrue(worst < 1e-5 * Math.max(1, scale), name + " layer " + layer + ": " + worst);
        }
        assertEquals(whole.keySet(), layerwise.keySet());
    }

    private static double maxAbsDelta(float[] a, float[] b) {
        double worst = 0;
        for (int i = 0; i < a.length; i++) {
            worst = Math.max(worst, Math.abs(a[i] - b[i]));
        }
        return worst;
    }

    private static double maxAbs(float[] a) {
        double worst = 0;
        for (float v : a) {
            worst = Math.max(worst, Math.abs(v));
        }
        return worst;
    }
}
