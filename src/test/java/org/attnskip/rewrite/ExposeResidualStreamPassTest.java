package org.attnskip.rewrite;

import org.attnskip.Fixtures;
import org.attnskip.export.ExportDtype;
import org.attnskip.export.Llama2cCheckpoint;
import org.attnskip.export.LlamaOnnxExporter;
import org.attnskip.export.LlamaWeights;
import org.attnskip.layout.LayoutDiscovery;
import org.attnskip.onnx.BadInputException;
import org.attnskip.onnx.Graph;
import org.attnskip.onnx.OnnxModelIO;
import org.attnskip.probe.HiddenStateRunner;
import org.attnskip.reference.ReferenceLlama;
import org.attnskip.runtime.DecoderSession;
import org.attnskip.runtime.Device;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.SplittableRandom;

import static org.attnskip.TestTokens.tokens;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Exposing the residual stream leaves the logits bit-identical and the streams equal the reference's. */
class ExposeResidualStreamPassTest {
    @TempDir
    Path tmp;

    @Test
    void stories260K() throws Exception {
        LlamaWeights w = Llama2cCheckpoint.read(Fixtures.model("stories260K/stories260K.bin"));
        int layers = w.config.layers();
        Path base = tmp.resolve("base.onnx");
        OnnxModelIO.save(LlamaOnnxExporter.export(w, ExportDtype.FLOAT), null, base, false);

        var loaded = OnnxModelIO.load(base);
        Graph g = loaded.graph();
        var exposed = ExposeResidualStreamPass.apply(g, LayoutDiscovery.discover(g));
        assertEquals(layers + 1, exposed.hidden().size());
        assertEquals(layers, exposed.attentionOut().size());
        assertTrue(exposed.notes().isEmpty(), exposed.notes().toString());
        Path rewritten = tmp.resolve("exposed.onnx");
        OnnxModelIO.save(loaded, g.toModel(), rewritten);

        int[] tokens = tokens(w.config.vocabSize(), 20, 5);
        float[][] before = logits(base, tokens);
        float[][] after = logits(rewritten, tokens);
        for (int t = 0; t < tokens.length; t++) {
            assertTrue(Arrays.equals(before[t], after[t]), "logits at " + t + " are bit-identical");
        }

        float[][][] expected = new ReferenceLlama(w).residualStreams(tokens);
        float worst = 0;
        try (HiddenStateRunner runner = HiddenStateRunner.open(rewritten, Device.CPU)) {
            assertEquals(layers, runner.layers());
            HiddenStateRunner.Pass pass = runner.run(tokens);
            for (int l = 0; l <= layers; l++) {
                for (int t = 0; t < tokens.length; t++) {
                    for (int j = 0; j < w.config.dim(); j++) {
                        worst = Math.max(worst, Math.abs(expected[l][t][j] - pass.hidden()[l][t][j]));
                    }
                }
            }
            for (int l = 0; l < layers; l++) {
                assertNotNull(pass.attentionOut()[l]);
                assertEquals(tokens.length, pass.attentionOut()[l].length);
            }
            for (int t = 0; t < tokens.length; t++) {
                assertTrue(Arrays.equals(before[t], pass.logits()[t]));
            }
        }
        System.out.printf("exposed residual stream vs reference: max |delta| %.2e%n", worst);
        assertTrue(worst <= 1e-4f, "max |delta| " + worst);

        // Exposing twice would shadow the first outputs.
        Graph again = OnnxModelIO.load(rewritten).graph();
        assertThrows(BadInputException.class, () -> ExposeResidualStreamPass.apply(again, LayoutDiscovery.discover(again)));
    }

    private static float[][] logits(Path graph, int[] tokens) {
        try (DecoderSession s = DecoderSession.open(graph, Device.CPU)) {
            long[] ids = new long[tokens.length];
            long[] mask = new long[tokens.length];
            long[] pos = new long[tokens.length];
            for (int i = 0; i < tokens.length; i++) {
                ids[i] = tokens[i];
                mask[i] = 1;
                pos[i] = i;
            }
            var out = s.run(new long[][] {ids}, new long[][] {mask}, new long[][] {pos}, s.emptyCache(1));
            out.cache().close();
            float[][] rows = new float[tokens.length][];
            for (int t = 0; t < tokens.length; t++) {
                rows[t] = out.logits().at(0, t);
            }
            return rows;
        }
    }

}
