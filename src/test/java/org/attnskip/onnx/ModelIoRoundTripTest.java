package org.attnskip.onnx;

import ai.onnx.proto.OnnxMl.ModelProto;
import org.attnskip.Fixtures;
import org.attnskip.OrtFeeds;
import org.attnskip.layout.DecoderLayout;
import org.attnskip.layout.LayoutDiscovery;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Load, save, load again: ONNX Runtime's outputs are bit-identical, and the input is untouched. */
class ModelIoRoundTripTest {
    @TempDir
    Path tmp;

    @ParameterizedTest
    @ValueSource(strings = {"ortgenai-llama-fp16/model.onnx", "ortgenai-gpt2-fp32/past.onnx", "torch-gpt2-past/gpt2_past.onnx"})
    void saveKeepsTheModel(String relative) throws Exception {
        Path source = Fixtures.model(relative);
        byte[] before = Files.readAllBytes(source);
        LoadedModel loaded = OnnxModelIO.load(source);
        DecoderLayout layout = LayoutDiscovery.discover(loaded.graph());

        Path copy = tmp.resolve("copy.onnx");
        OnnxModelIO.save(loaded, loaded.proto(), copy);
        LoadedModel reloaded = OnnxModelIO.load(copy);
        assertEquals(loaded.proto().getGraph().getNodeCount(), reloaded.proto().getGraph().getNodeCount());

        Map<String, float[]> a = OrtFeeds.run(source, layout, 1, 3, 7);
        Map<String, float[]> b = OrtFeeds.run(copy, layout, 1, 3, 7);
        assertEquals(a.keySet(), b.keySet());
        for (String k : a.keySet()) {
            assertArrayEquals(a.get(k), b.get(k), 0f, k);
        }
        assertArrayEquals(before, Files.readAllBytes(source), "the input must not change");
        try (var files = Files.list(tmp)) {
            assertTrue(files.noneMatch(f -> f.getFileName().toString().endsWith(".tmp")), "no temporary files left");
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"ortgenai-gpt2-fp32/past.onnx"})
    void externalDataRoundTrip(String relative) throws Exception {
        Path source = Fixtures.model(relative);
        LoadedModel loaded = OnnxModelIO.load(source);
        DecoderLayout layout = LayoutDiscovery.discover(loaded.graph());
        Path external = tmp.resolve("ext.onnx");
        OnnxModelIO.save(loaded.proto(), loaded.baseDir(), external, true);
        assertTrue(Files.size(tmp.resolve("ext.onnx.data")) > 100_000, "weights moved to the data file");
        assertTrue(Files.size(external) < 100_000, "model file keeps only the graph");

        // and back again: external in, inline out keeps the numbers
        LoadedModel ext = OnnxModelIO.load(external);
        ModelProto inline = OnnxModelIO.inlineExternalData(ext.proto(), ext.baseDir());
        Path inlined = tmp.resolve("inline.onnx");
        OnnxModelIO.save(inline, ext.baseDir(), inlined, false);
        assertTrue(Files.notExists(tmp.resolve("inline.onnx.data")));

        // external in, external out (optimize on a large model): copied file to file, byte for byte
        Path again = tmp.resolve("again.onnx");
        OnnxModelIO.save(ext, ext.proto(), again);
        assertArrayEquals(Files.readAllBytes(tmp.resolve("ext.onnx.data")), Files.readAllBytes(tmp.resolve("again.onnx.data")));

        Map<String, float[]> a = OrtFeeds.run(source, layout, 2, 3, 11);
        Map<String, float[]> b = OrtFeeds.run(external, layout, 2, 3, 11);
        Map<String, float[]> c = OrtFeeds.run(inlined, layout, 2, 3, 11);
        Map<String, float[]> d = OrtFeeds.run(again, layout, 2, 3, 11);
        for (String k : a.keySet()) {
            assertArrayEquals(a.get(k), b.get(k), 0f, k);
            assertArrayEquals(a.get(k), c.get(k), 0f, k);
            assertArrayEquals(a.get(k), d.get(k), 0f, k);
        }
    }
}
