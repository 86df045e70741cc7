package org.attnskip.hostile;

import org.attnskip.CliRun;
import org.attnskip.export.TinyHfCheckpoint;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.TreeMap;

import static org.attnskip.hostile.HostileFiles.assertRefused;
import static org.attnskip.hostile.HostileFiles.snapshot;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Files a model names (external data, attnskip.json's model and tokenizer, a safetensors index's
 * shards) are read only from inside the model's folder. In each case the file outside exists and
 * holds exactly the right bytes, so only the confinement can stop the read.
 */
class ModelFolderConfinementTest {
    @TempDir
    Path tmp;

    /** tmp/m/model.onnx whose data file has been moved to tmp/outside/model.onnx.data. */
    private Path modelWithDataOutside() throws IOException {
        Path model = HostileFiles.tinyWithExternalData(tmp.resolve("m"));
        Files.createDirectories(tmp.resolve("outside"));
        Files.move(tmp.resolve("m/model.onnx.data"), tmp.resolve("outside/model.onnx.data"));
        return model;
    }

    private void assertReadAndRewriteRefused(Path model, String tensor, String location) {
        TreeMap<String, String> before = snapshot(tmp);
        assertRefused(CliRun.of("inspect", model.toString()),
                "external data of tensor '" + tensor + "'", location);
        assertRefused(CliRun.of("optimize", model.toString(), "-o", tmp.resolve("out.onnx").toString(),
                "--drop-attn-above", "0.5"), "external data of tensor '" + tensor + "'");
        assertEquals(before, snapshot(tmp), "nothing written, nothing changed");
    }

    @Test
    void externalDataLocationWithDotDotIsRefused() throws IOException {
        Path model = modelWithDataOutside();
        String tensor = HostileFiles.relocateFirstExternal(model, "../outside/model.onnx.data");
        assertReadAndRewriteRefused(model, tensor, "points outside the model's folder: '../outside/model.onnx.data'");
    }

    @Test
    void absoluteExternalDataLocationIsRefused() throws IOException {
        Path model = modelWithDataOutside();
        String absolute = tmp.resolve("outside/model.onnx.data").toAbsolutePath().toString();
        String tensor = HostileFiles.relocateFirstExternal(model, absolute);
        assertReadAndRewriteRefused(model, tensor, "points outside the model's folder: '" + absolute + "'");
    }

    @Test
    void dotDotHiddenInsideTheLocationIsRefused() throws IOException {
        Path model = modelWithDataOutside();
        Files.createDirectories(tmp.resolve("m/sub"));
        String tensor = HostileFiles.relocateFirstExternal(model, "sub/../../outside/model.onnx.data");
        assertReadAndRewriteRefused(model, tensor, "points outside the model's folder");
    }

    @Test
    void dataFileThatIsALinkOutOfTheFolderIsRefused() throws IOException {
        Path model = modelWithDataOutside();
        Files.createSymbolicLink(tmp.resolve("m/model.onnx.data"), Path.of("../outside/model.onnx.data"));
        assertReadAndRewriteRefused(model, firstExternalName(model), "points outside the model's folder: 'model.onnx.data'");
    }

    @Test
    void linkThatStaysInsideTheFolderIsFollowed() throws IOException {
        Path model = HostileFiles.tinyWithExternalData(tmp.resolve("m"));
        Files.createDirectories(tmp.resolve("m/weights"));
        Files.move(tmp.resolve("m/model.onnx.data"), tmp.resolve("m/weights/w.data"));
        Files.createSymbolicLink(tmp.resolve("m/model.onnx.data"), Path.of("weights/w.data"));
        CliRun r = CliRun.of("inspect", model.toString());
        assertEquals(0, r.code(), r.err());
    }

    @Test
    void manifestModelFileOutsideTheFolderIsRefused() throws IOException {
        Path m = tmp.resolve("m");
        HostileFiles.copyTree(HostileFiles.TINY, m);
        HostileFiles.copyTree(HostileFiles.TINY, tmp.resolve("other"));
        Files.delete(m.resolve("model.onnx"));
        HostileFiles.editManifest(m, s -> s.replace("\"model\" : \"model.onnx\"", "\"model\" : \"../other/model.onnx\""));
        TreeMap<String, String> before = snapshot(tmp);
        assertRefused(CliRun.of("generate", m.toString(), "--tokenizer", m.resolve("attnskip.json").toString(),
                "--prompt", "a", "-n", "1"), "attnskip.json's model file points outside the model's folder: '../other/model.onnx'");
        assertEquals(before, snapshot(tmp));
    }

    @Test
    void manifestTokenizerOutsideTheFolderIsRefused() throws IOException {
        Path m = tmp.resolve("m");
        HostileFiles.copyTree(HostileFiles.TINY, m);
        Files.writeString(tmp.resolve("secret.txt"), "not a tokenizer");
        HostileFiles.editManifest(m, s -> s.replace("\"dtype\"",
                "\"tokenizer\" : {\"kind\" : \"llama2c\", \"file\" : \"../secret.txt\"},\n  \"dtype\""));
        TreeMap<String, String> before = snapshot(tmp);
        assertRefused(CliRun.of("generate", m.toString(), "--prompt", "a", "-n", "1"),
                "attnskip.json's tokenizer file points outside the model's folder: '../secret.txt'");
        assertEquals(before, snapshot(tmp));
    }

    @Test
    void manifestTokenizerLinkedOutOfTheFolderIsRefused() throws IOException {
        Path m = tmp.resolve("m");
        HostileFiles.copyTree(HostileFiles.TINY, m);
        Files.writeString(tmp.resolve("secret.txt"), "not a tokenizer");
        Files.createSymbolicLink(m.resolve("tok.bin"), tmp.resolve("secret.txt"));
        HostileFiles.editManifest(m, s -> s.replace("\"dtype\"",
                "\"tokenizer\" : {\"kind\" : \"llama2c\", \"file\" : \"tok.bin\"},\n  \"dtype\""));
        assertRefused(CliRun.of("generate", m.toString(), "--prompt", "a", "-n", "1"),
                "attnskip.json's tokenizer file points outside the model's folder: 'tok.bin'");
    }

    @Test
    void folderFileLinkedOutsideIsNotCopiedIntoTheOutput() throws IOException {
        Path m = tmp.resolve("m");
        HostileFiles.copyTree(HostileFiles.TINY, m);
        Files.writeString(tmp.resolve("secret.txt"), "private");
        Files.createSymbolicLink(m.resolve("notes.txt"), tmp.resolve("secret.txt"));
        TreeMap<String, String> before = snapshot(tmp);
        assertRefused(CliRun.of("optimize", m.toString(), "-o", tmp.resolve("out").toString(), "--drop-attn-above", "0.5"),
                "notes.txt is a link out of the folder");
        assertEquals(before, snapshot(tmp));
    }

    @Test
    void safetensorsShardOutsideTheFolderIsRefused() throws IOException {
        Path hf = tmp.resolve("hf");
        Map<String, TinyHfCheckpoint.HfTensor> tensors = TinyHfCheckpoint.tensors(false, true, 1);
        TinyHfCheckpoint.writeConfig(hf, TinyHfCheckpoint.llamaConfig());
        TinyHfCheckpoint.writeSharded(hf, tensors);
        TinyHfCheckpoint.writeTokenizer(hf);
        Files.move(hf.resolve("model-00002-of-00002.safetensors"), tmp.resolve("model-00002-of-00002.safetensors"));
        Path index = hf.resolve("model.safetensors.index.json");
        Files.writeString(index, Files.readString(index).replace("\"model-00002", "\"../model-00002"));
        TreeMap<String, String> before = snapshot(tmp);
        assertRefused(CliRun.of("export", "--hf", hf.toString(), "-o", tmp.resolve("out").toString()),
                "shard named in model.safetensors.index.json points outside the model's folder: '../model-00002-of-00002.safetensors'");
        assertEquals(before, snapshot(tmp));
    }

    private static String firstExternalName(Path model) throws IOException {
        for (var t : ai.onnx.proto.OnnxMl.ModelProto.parseFrom(Files.readAllBytes(model)).getGraph().getInitializerList()) {
            if (org.attnskip.onnx.ExternalData.isExternal(t)) {
                return t.getName();
            }
        }
        throw new IllegalStateException("no external tensor");
    }
}
