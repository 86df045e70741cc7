package org.attnskip.rewrite;

import org.attnskip.Deltas;
import org.attnskip.Fixtures;
import org.attnskip.OrtFeeds;
import org.attnskip.layout.DecoderLayout;
import org.attnskip.layout.LayoutDiscovery;
import org.attnskip.onnx.Graph;
import org.attnskip.onnx.LoadedModel;
import org.attnskip.onnx.OnnxModelIO;
import org.attnskip.reference.AffineMap;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.function.BiConsumer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Calibrated drop on the shared third-party graphs (fused GQA with Skip*Norm in fp16, GPT-2's
 * stacked-cache Attention, torch's unfused GPT-2): with all-zero maps it is plain drop, output for
 * output, and the same KV inputs and outputs go; a non-zero map changes the logits.
 */
class CompensatedDropOnThirdPartyGraphsTest {
    @TempDir
    Path tmp;

    @ParameterizedTest
    @CsvSource({
            "ortgenai-llama-fp16/model.onnx, 0.5, 2e-3",
            "ortgenai-gpt2-fp32/past.onnx, 0.6, 1e-5",
            "torch-gpt2-past/gpt2_past.onnx, 0.6, 1e-5"})
    void zeroMapsArePlainDropAndOthersAreWiredIn(String relative, String threshold, double tolerance) throws Exception {
        Path source = Fixtures.model(relative);
        Path plain = rewrite(source, "plain.onnx", (g, layout) ->
                new DropAttentionPass(128).apply(g, layout, LayerSelection.fromFraction(threshold, layout.numLayers())));
        Path zero = rewrite(source, "zero.onnx", (g, layout) -> {
            LayerSelection s = LayerSelection.fromFraction(threshold, layout.numLayers());
            new CompensatedDropPass(maps(s, layout.hiddenSize(), 0), 128).apply(g, layout, s);
        });
        Path mapped = rewrite(source, "mapped.onnx", (g, layout) -> {
            LayerSelection s = LayerSelection.fromFraction(threshold, layout.numLayers());
            new CompensatedDropPass(maps(s, layout.hiddenSize(), 0.2), 128).apply(g, layout, s);
        });
        DecoderLayout plainLayout = LayoutDiscovery.discover(OnnxModelIO.load(plain).graph());
        DecoderLayout zeroLayout = LayoutDiscovery.discover(OnnxModelIO.load(zero).graph());
        assertEquals(OnnxModelIO.load(plain).graph().runtimeInputs().stream().map(v -> v.getName()).sorted().toList(),
                OnnxModelIO.load(zero).graph().runtimeInputs().stream().map(v -> v.getName()).sorted().toList());
        assertEquals(plainLayout.kvBytesPerToken(), zeroLayout.kvBytesPerToken());

        Map<String, float[]> expected = OrtFeeds.run(plain, plainLayout, 1, 3, 17);
        Map<String, float[]> zeroOut = OrtFeeds.run(zero, zeroLayout, 1, 3, 17);
        Map<String, float[]> mappedOut = OrtFeeds.run(mapped, zeroLayout, 1, 3, 17);
        assertEquals(expected.keySet(), zeroOut.keySet());
        for (String name : expected.keySet()) {
            float d = Deltas.maxAbsDelta(expected.get(name), zeroOut.get(name));
            assertTrue(d <= tolerance, name + ": zero maps differ from plain drop by " + d);
        }
        String logits = plainLayout.logits();
        assertTrue(Deltas.maxAbsDelta(expected.get(logits), mappedOut.get(logits)) > 100 * tolerance,
                "a non-zero map changes the logits");
    }

    private Path rewrite(Path source, String name, BiConsumer<Graph, DecoderLayout> pass) {
        LoadedModel loaded = OnnxModelIO.load(source);
        Graph g = loaded.graph();
        pass.accept(g, LayoutDiscovery.discover(g));
        Path out = tmp.resolve(name);
        OnnxModelIO.save(loaded, g.toModel(), out);
        return out;
    }

    private static Map<Integer, AffineMap> maps(LayerSelection selection, int dim, double scale) {
        SplittableRandom r = new SplittableRandom(1);
        Map<Integer, AffineMap> maps = new HashMap<>();
        for (int layer : selection.layers()) {
            float[] m = new float[dim * dim];
            float[] b = new float[dim];
            for (int i = 0; i < m.length; i++) {
                m[i] = (float) (scale * r.nextDouble(-1, 1) / Math.sqrt(dim));
            }
            for (int i = 0; i < b.length; i++) {
                b[i] = (float) (scale * r.nextDouble(-1, 1));
            }
            maps.put(layer, new AffineMap(dim, m, null, b));
        }
        return maps;
    }
}
