package org.attnskip.export;

import ai.onnx.proto.OnnxMl.ModelProto;
import ai.onnx.proto.OnnxMl.TensorProto;
import org.attnskip.onnx.BadInputException;
import org.attnskip.onnx.LoadedModel;
import org.attnskip.onnx.OnnxModelIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ModelDirectoryTest {
    @TempDir
    Path tmp;

    private static final LlamaConfig CONFIG = new LlamaConfig(32, 64, 2, 4, 2, 40, 64, 1e-5f, 500000f,
            new LlamaConfig.RopeScaling(8f, 1f, 4f, 8192), false, true, 1, 2);

    private Path tokenizerFile() throws IOException {
        Path t = tmp.resolve("tok.bin");
        Files.write(t, new byte[] {1, 2, 3, 4});
        return t;
    }

    private static ModelManifest manifest(ExportDtype dtype) {
        return ModelManifest.of(CONFIG, dtype, ModelManifest.TokenizerRef.forFile("tok.bin"), "synthetic:test");
    }

    @Test
    void roundTripKeepsManifestModelAndTokenizer() throws IOException {
        LlamaWeights w = TestLlamaWeights.random(CONFIG, 5);
        ModelProto model = LlamaOnnxExporter.export(w, ExportDtype.FLOAT16);
        Path target = tmp.resolve("out/model-dir");
        ModelDirectory written = ModelDirectory.write(target, model, manifest(ExportDtype.FLOAT16), tokenizerFile(), true);

        ModelDirectory read = ModelDirectory.read(target);
        assertEquals(written.manifest(), read.manifest());
        assertEquals(CONFIG, read.manifest().config());
        assertEquals("fp16", read.manifest().dtype());
        assertEquals("llama2c", read.manifest().tokenizer().kind());
        assertArrayEquals(new byte[] {1, 2, 3, 4}, Files.readAllBytes(read.tokenizerFile()));
        assertTrue(Files.isRegularFile(target.resolve("model.onnx.data")), "weights are external when asked");
        LoadedModel loaded = OnnxModelIO.load(read.modelFile());
        ModelProto inlined = OnnxModelIO.inlineExternalData(loaded.proto(), loaded.baseDir());
        assertEquals(model.getGraph().getNodeList(), inlined.getGraph().getNodeList());
        assertEquals(model.getGraph().getInitializerCount(), inlined.getGraph().getInitializerCount());
        for (int i = 0; i < model.getGraph().getInitializerCount(); i++) {
            TensorProto a = model.getGraph().getInitializer(i);
            TensorProto b = inlined.getGraph().getInitializer(i);
            assertEquals(a.getName(), b.getName());
            assertEquals(a.getDimsList(), b.getDimsList());
            assertEquals(a.getRawData(), b.getRawData(), a.getName());
        }
        String json = Files.readString(target.resolve("attnskip.json"));
        assertTrue(json.contains("\"kv_heads\" : 2") && json.contains("\"rope_type\" : \"llama3\""), json);
        assertEquals(setOf("attnskip.json", "model.onnx", "model.onnx.data", "tok.bin"), listing(target));
        assertEquals(setOf("model-dir"), listing(tmp.resolve("out")), "no temporary directory is left behind");
    }

    @Test
    void replacesAnEarlierModelDirectoryButNothingElse() throws IOException {
        ModelProto model = LlamaOnnxExporter.export(TestLlamaWeights.random(CONFIG, 6), ExportDtype.FLOAT);
        Path target = tmp.resolve("m");
        ModelDirectory.write(target, model, manifest(ExportDtype.FLOAT16), tokenizerFile(), true);
        ModelDirectory.write(target, model, manifest(ExportDtype.FLOAT), tokenizerFile(), false);
        assertEquals("fp32", ModelDirectory.read(target).manifest().dtype());
        assertFalse(Files.exists(target.resolve("model.onnx.data")), "the old directory's files are gone");
        assertEquals(setOf("m", "tok.bin"), listing(tmp));

        Path other = Files.createDirectories(tmp.resolve("precious"));
        Files.writeString(other.resolve("notes.txt"), "keep me");
        BadInputException e = assertThrows(BadInputException.class,
                () -> ModelDirectory.write(other, model, manifest(ExportDtype.FLOAT), tokenizerFile(), false));
        assertTrue(e.getMessage().contains("refusing to overwrite"), e.getMessage());
        assertEquals("keep me", Files.readString(other.resolve("notes.txt")));
    }

    @Test
    void aFailedWriteLeavesNothing() throws IOException {
        ModelProto model = LlamaOnnxExporter.export(TestLlamaWeights.random(CONFIG, 7), ExportDtype.FLOAT);
        Path target = tmp.resolve("never");
        assertThrows(BadInputException.class,
                () -> ModelDirectory.write(target, model, manifest(ExportDtype.FLOAT), tmp.resolve("missing.bin"), false));
        assertFalse(Files.exists(target));
        assertEquals(setOf(), listing(tmp));
    }

    @Test
    void readingSomethingElseIsOneLineOfBadInput() throws IOException {
        Path dir = Files.createDirectories(tmp.resolve("d"));
        assertThrows(BadInputException.class, () -> ModelDirectory.read(dir));
        Files.writeString(dir.resolve("attnskip.json"), "{not json");
        BadInputException e = assertThrows(BadInputException.class, () -> ModelDirectory.read(dir));
        assertFalse(e.getMessage().contains("\n"), e.getMessage());
    }

    private static java.util.Set<String> setOf(String... names) {
        return java.util.Set.of(names);
    }

    private static java.util.Set<String> listing(Path dir) throws IOException {
        try (Stream<Path> s = Files.list(dir)) {
            return s.map(p -> p.getFileName().toString()).collect(java.util.stream.Collectors.toSet());
        }
    }
}
