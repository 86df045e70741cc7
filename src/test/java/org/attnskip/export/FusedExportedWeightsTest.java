package org.attnskip.export;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** A directory written with --graph fused gives its weights back (the probe's switch experiment reads them). */
class FusedExportedWeightsTest {
    @TempDir
    Path tmp;

    @Test
    void packedProjectionSplitsBackIntoTheCheckpointsWeights() {
        LlamaWeights w = TestLlamaWeights.random(TestLlamaWeights.config(64, 96, 2, 4, 2, 61, 96, false, true), 9);
        ModelDirectory dir = ModelDirectory.write(tmp.resolve("fused"), FusedLlamaExporter.export(w, ExportDtype.FLOAT),
                ModelManifest.of(w.config, ExportDtype.FLOAT, null, "test", GraphFlavour.FUSED), null, false);

        LlamaWeights back = ExportedWeights.read(dir);

        assertEquals(w.config, back.config);
        assertArrayEquals(w.tokenEmbedding, back.tokenEmbedding);
        assertArrayEquals(w.classifier, back.classifier);
        assertArrayEquals(w.finalNorm, back.finalNorm);
        for (int i = 0; i < w.config.layers(); i++) {
            LlamaWeights.Layer a = w.layers[i];
            LlamaWeights.Layer b = back.layers[i];
            assertArrayEquals(a.wq(), b.wq(), "layer " + i + " wq");
            assertArrayEquals(a.wk(), b.wk(), "layer " + i + " wk");
            assertArrayEquals(a.wv(), b.wv(), "layer " + i + " wv");
            assertArrayEquals(a.bq(), b.bq(), "layer " + i + " bq");
            assertArrayEquals(a.bv(), b.bv(), "layer " + i + " bv");
            assertArrayEquals(a.wo(), b.wo(), "layer " + i + " wo");
            assertArrayEquals(a.w1(), b.w1(), "layer " + i + " w1");
            assertArrayEquals(a.w2(), b.w2(), "layer " + i + " w2");
            assertArrayEquals(a.w3(), b.w3(), "layer " + i + " w3");
            assertArrayEquals(a.attnNorm(), b.attnNorm(), "layer " + i + " attention norm");
        }
    }

    /** The manifest names the flavour: an unfused graph under a fused manifest is refused, not misread. */
    @Test
    void aFlavourThatDisagreesWithTheGraphIsRefused() {
        LlamaWeights w = TestLlamaWeights.random(TestLlamaWeights.config(64, 96, 1, 4, 2, 61, 96, true), 10);
        ModelDirectory dir = ModelDirectory.write(tmp.resolve("mislabelled"), LlamaOnnxExporter.export(w, ExportDtype.FLOAT),
                ModelManifest.of(w.config, ExportDtype.FLOAT, null, "test", GraphFlavour.FUSED), null, false);
        assertThrows(ExportedWeights.NotExporterGraph.class, () -> ExportedWeights.read(dir));
    }
}
