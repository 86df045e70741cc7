package org.attnskip.hostile;

import org.attnskip.CliRun;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.TreeMap;

import static org.attnskip.hostile.HostileFiles.assertRefused;
import static org.attnskip.hostile.HostileFiles.snapshot;
import static org.junit.jupiter.api.Assertions.assertEquals;

/** Outputs go exactly where -o says: never through a link planted there, never over an unrelated folder. */
class OutputPathTest {
    @TempDir
    Path tmp;

    @Test
    void linkPlantedAtAFileOutputIsNotFollowed() throws IOException {
        Path victim = tmp.resolve("victim.txt");
        Files.writeString(victim, "keep me");
        Path out = tmp.resolve("out.onnx");
        Files.createSymbolicLink(out, victim);
        TreeMap<String, String> before = snapshot(tmp);
        assertRefused(CliRun.of("optimize", HostileFiles.TINY.resolve("model.onnx").toString(), "-o", out.toString(),
                "--drop-attn-above", "0.5"), "is a symbolic link; refusing to write through or replace it");
        assertEquals(before, snapshot(tmp));
    }

    @Test
    void linkPlantedAtTheDataFileIsNotFollowed() throws IOException {
        Path in = HostileFiles.tinyWithExternalData(tmp.resolve("in"));
        Path victim = tmp.resolve("victim.txt");
        Files.writeString(victim, "keep me");
        Files.createSymbolicLink(tmp.resolve("out.onnx.data"), victim);
        TreeMap<String, String> before = snapshot(tmp);
        assertRefused(CliRun.of("optimize", in.toString(), "-o", tmp.resolve("out.onnx").toString(),
                "--drop-attn-above", "0.5"), "out.onnx.data is a symbolic link");
        assertEquals(before, snapshot(tmp));
    }

    @Test
    void linkPlantedAtADirectoryOutputIsNotFollowed() throws IOException {
        Path victim = tmp.resolve("victim");
        HostileFiles.copyTree(HostileFiles.TINY, victim);
        Path out = tmp.resolve("out");
        Files.createSymbolicLink(out, victim);
        TreeMap<String, String> before = snapshot(tmp);
        assertRefused(CliRun.of("optimize", HostileFiles.TINY.toString(), "-o", out.toString(), "--drop-attn-above", "0.5"),
                "is a symbolic link");
        assertRefused(CliRun.of("export", "--synthetic", "layers=1,hidden=16,heads=2,ffn=32,vocab=32", "-o", out.toString()),
                "is a symbolic link");
        assertEquals(before, snapshot(tmp));
    }

    @Test
    void anUnrelatedFolderIsNotReplacedByAModelDirectory() throws IOException {
        Path out = tmp.resolve("documents");
        Files.createDirectories(out);
        Files.writeString(out.resolve("thesis.txt"), "years of work");
        TreeMap<String, String> before = snapshot(tmp);
        assertRefused(CliRun.of("optimize", HostileFiles.TINY.toString(), "-o", out.toString(), "--drop-attn-above", "0.5"),
                "exists and is not a model directory holding model.onnx; refusing to replace it");
        assertEquals(before, snapshot(tmp));
    }

    @Test
    void anEarlierModelDirectoryIsReplaced() throws IOException {
        Path out = tmp.resolve("out");
        assertEquals(0, CliRun.of("optimize", HostileFiles.TINY.toString(), "-o", out.toString(), "--drop-attn-above", "0.5").code());
        CliRun again = CliRun.of("optimize", HostileFiles.TINY.toString(), "-o", out.toString(), "--drop-attn-above", "0.25");
        assertEquals(0, again.code(), again.err());
        assertEquals("0.25", org.attnskip.rewrite.RewriteMetadata.read(
                org.attnskip.onnx.OnnxModelIO.load(out.resolve("model.onnx")).proto()).get("threshold"));
    }
}
