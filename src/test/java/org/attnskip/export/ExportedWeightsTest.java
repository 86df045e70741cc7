package org.attnskip.export;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.attnskip.Fixtures;
import org.attnskip.onnx.Half;
import org.attnskip.reference.ReferenceLlama;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ExportedWeightsTest {
    @TempDir
    Path tmp;

    @Test
    void stories260KReadBackGivesTheCheckpointsLogits() throws IOException {
        Path folder = Fixtures.model("stories260K");
        LlamaWeights original = Llama2cCheckpoint.read(folder.resolve("stories260K.bin"));
        ModelDirectory dir = write(original, original.config, ExportDtype.FLOAT, folder.resolve("tok512.bin"));

        LlamaWeights back = ExportedWeights.read(dir);

        assertEquals(original.config, back.config);
        assertSame(back.tokenEmbedding, back.classifier, "a shared classifier stays shared");
        JsonNode ids = new ObjectMapper().readTree(folder.resolve("golden/once_upon_a_time.ids.json").toFile()).get("all_ids");
        int[] tokens = new int[48];
        for (int i = 0; i < tokens.length; i++) {
            tokens[i] = ids.get(i).asInt();
        }
        float[][] want = new ReferenceLlama(original).logitsAllPositions(tokens);
        float[][] got = new ReferenceLlama(back).logitsAllPositions(tokens);
        double delta = 0;
        for (int p = 0; p < tokens.length; p++) {
            for (int v = 0; v < want[p].length; v++) {
                delta = Math.max(delta, Math.abs(want[p][v] - got[p][v]));
            }
        }
        System.out.printf("stories260K read back from its export, %d tokens: max |logit delta| vs the checkpoint %.2e%n",
                tokens.length, delta);
        assertEquals(0.0, delta, "transposing back and fp32 storage lose nothing");
    }

    @Test
    void fp16ExternalDataWithBiasesSeparateClassifierAndRopeScalingReadsBackRounded() {
        LlamaConfig c = TestLlamaWeights.config(32, 64, 2, 4, 2, 61, 96, false, true);
        c = new LlamaConfig(c.dim(), c.hiddenDim(), c.layers(), c.heads(), c.kvHeads(), c.vocabSize(), c.seqLen(),
                c.normEps(), 500000f, new LlamaConfig.RopeScaling(8f, 1f, 4f, 32), c.sharedClassifier(), c.qkvBias(),
                c.bosId(), c.eosId());
        LlamaWeights w = TestLlamaWeights.random(c, 5);
        ModelDirectory dir = ModelDirectory.write(tmp.resolve("fp16"), LlamaOnnxExporter.export(w, ExportDtype.FLOAT16),
                ModelManifest.of(c, ExportDtype.FLOAT16, null, "test"), null, true);

        LlamaWeights back = ExportedWeights.read(dir);

        assertEquals(c, back.config);
        assertArrayEquals(fp16(w.classifier), back.classifier);
        assertArrayEquals(fp16(w.tokenEmbedding), back.tokenEmbedding);
        for (int i = 0; i < c.layers(); i++) {
            LlamaWeights.Layer a = w.layers[i];
            LlamaWeights.Layer b = back.layers[i];
            assertArrayEquals(fp16(a.wq()), b.wq(), "layer " + i + " wq");
            assertArrayEquals(fp16(a.wk()), b.wk(), "layer " + i + " wk");
            assertArrayEquals(fp16(a.bk()), b.bk(), "layer " + i + " bk");
            assertArrayEquals(fp16(a.w2()), b.w2(), "layer " + i + " w2");
            assertArrayEquals(fp16(a.ffnNorm()), b.ffnNorm(), "layer " + i + " ffn norm");
        }
    }

    @Test
    void noBiasesReadBackAsNone() {
        LlamaWeights w = TestLlamaWeights.random(TestLlamaWeights.config(32, 64, 1, 4, 4, 61, 96, true), 6);
        LlamaWeights back = ExportedWeights.read(write(w, w.config, ExportDtype.FLOAT, null));
        assertNull(back.layers[0].bq());
        assertArrayEquals(w.layers[0].w1(), back.layers[0].w1());
    }

    @Test
    void aManifestThatDisagreesWithTheGraphIsRefused() {
        LlamaWeights w = TestLlamaWeights.random(TestLlamaWeights.config(32, 64, 1, 4, 2, 61, 96, true), 7);
        LlamaConfig c = w.config;
        LlamaConfig otherTheta = new LlamaConfig(c.dim(), c.hiddenDim(), c.layers(), c.heads(), c.kvHeads(),
                c.vocabSize(), c.seqLen(), c.normEps(), 500000f, null, c.sharedClassifier(), c.qkvBias(), c.bosId(), c.eosId());
        ModelDirectory dir = write(w, otherTheta, ExportDtype.FLOAT, null);

        ExportedWeights.NotExporterGraph e = assertThrows(ExportedWeights.NotExporterGraph.class,
                () -> ExportedWeights.read(dir));
        assertTrue(e.getMessage().contains("rotary_emb"), e.getMessage());
    }

    @Test
    void aManifestWithOtherShapesIsRefusedByName() {
        LlamaWeights w = TestLlamaWeights.random(TestLlamaWeights.config(32, 64, 1, 4, 2, 61, 96, true), 8);
        LlamaConfig c = w.config;
        LlamaConfig wider = new LlamaConfig(c.dim(), 2 * c.hiddenDim(), c.layers(), c.heads(), c.kvHeads(),
                c.vocabSize(), c.seqLen(), c.normEps(), c.ropeTheta(), null, c.sharedClassifier(), c.qkvBias(), c.bosId(), c.eosId());
        ModelDirectory dir = write(w, wider, ExportDtype.FLOAT, null);

        ExportedWeights.NotExporterGraph e = assertThrows(ExportedWeights.NotExporterGraph.class,
                () -> ExportedWeights.read(dir));
        assertTrue(e.getMessage().contains("mlp.gate_proj.weight"), e.getMessage());
    }

    @Test
    void weightsThatWouldNotFitTheHeapAreRefusedBeforeReading() {
        LlamaConfig c = TestLlamaWeights.config(32, 64, 2, 4, 2, 61, 96, false, false);
        ModelDirectory dir = write(TestLlamaWeights.random(c, 3), c, ExportDtype.FLOAT16, null);
        // fp32 values plus the fp16 re-export plus the budget's slack
        long need = ExportBudget.of(c, ExportDtype.FLOAT).dataBytes() + ExportBudget.of(c, ExportDtype.FLOAT16).dataBytes()
                + ExportBudget.SLACK_BYTES;
        ExportedWeights.TooLargeForHeap e = assertThrows(ExportedWeights.TooLargeForHeap.class,
                () -> ExportedWeights.read(dir, need - 1));
        assertTrue(e.getMessage().contains("-Xmx1g"), e.getMessage());
        assertEquals(c, ExportedWeights.read(dir, need).config, "enough heap: read");
    }

    private ModelDirectory write(LlamaWeights w, LlamaConfig manifestConfig, ExportDtype dtype, Path tokenizer) {
        ModelManifest.TokenizerRef ref = tokenizer == null ? null
                : ModelManifest.TokenizerRef.forFile(tokenizer.getFileName().toString());
        return ModelDirectory.write(tmp.resolve("model-" + System.nanoTime()), LlamaOnnxExporter.export(w, dtype),
                ModelManifest.of(manifestConfig, dtype, ref, "test"), tokenizer, false);
    }

    private static float[] fp16(float[] values) {
        float[] out = new float[values.length];
        for (int i = 0; i < values.length; i++) {
            out[i] = Half.toFloat(Half.fromFloat(values[i]));
        }
        return out;
    }
}
