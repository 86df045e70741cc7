package org.attnskip.eval;

import org.attnskip.Fixtures;
import org.attnskip.export.ExportDtype;
import org.attnskip.export.Llama2cCheckpoint;
import org.attnskip.export.LlamaOnnxExporter;
import org.attnskip.layout.LayoutDiscovery;
import org.attnskip.onnx.Graph;
import org.attnskip.onnx.LoadedModel;
import org.attnskip.onnx.OnnxModelIO;
import org.attnskip.rewrite.PaperFreezeEvaluationPass;
import org.attnskip.rewrite.PaperFreezeDeployablePass;
import org.attnskip.rewrite.LayerSelection;
import org.attnskip.runtime.DecoderSession;
import org.attnskip.runtime.Device;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The evaluator scores a deployable freeze graph (last position only) like the all-positions one. */
class ScoringModelFreezeTest {
    @TempDir
    Path tmp;

    @Test
    void deployableFreezeScoresOnePrefixPerPassWithTheSameNumbers() {
        Path base = tmp.resolve("base.onnx");
        OnnxModelIO.save(LlamaOnnxExporter.export(Llama2cCheckpoint.read(Fixtures.model("stories260K/stories260K.bin")),
                ExportDtype.FLOAT), null, base, false);
        Path all = rewrite(base, tmp.resolve("all.onnx"), false);
        Path sliced = rewrite(base, tmp.resolve("sliced.onnx"), true);
        int[] tokens = {1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421};
        try (DecoderSession a = DecoderSession.open(all, Device.CPU); DecoderSession b = DecoderSession.open(sliced, Device.CPU)) {
            ScoringModel everyPosition = new ScoringModel(a);
            ScoringModel lastOnly = new ScoringModel(b);
            assertFalse(everyPosition.scoresOnePrefixPerPass());
            assertTrue(lastOnly.scoresOnePrefixPerPass());
            double[][] x = everyPosition.logProbs(tokens, 1);
            double[][] y = lastOnly.logProbs(tokens, 1);
            assertEquals(x.length, y.length);
            double max = 0;
            for (int p = 0; p < x.length; p++) {
                for (int v = 0; v < x[p].length; v++) {
                    max = Math.max(max, Math.abs(x[p][v] - y[p][v]));
                }
            }
            assertTrue(max < 1e-4, "max |delta log p| = " + max);
        }
    }

    private static Path rewrite(Path base, Path out, boolean deployable) {
        LoadedModel m = OnnxModelIO.load(base);
        Graph g = m.graph();
        var layout = LayoutDiscovery.discover(g);
        LayerSelection s = LayerSelection.fromLayer(2, layout.numLayers());
        if (deployable) {
            new PaperFreezeDeployablePass().apply(g, layout, s);
        } else {
            new PaperFreezeEvaluationPass().apply(g, layout, s);
        }
        OnnxModelIO.save(m, g.toModel(), out);
        return out;
    }
}
