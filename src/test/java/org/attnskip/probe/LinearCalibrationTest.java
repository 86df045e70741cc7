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
}
