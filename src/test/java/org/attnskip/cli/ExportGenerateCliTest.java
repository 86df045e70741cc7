package org.attnskip.cli;

import org.attnskip.CliRun;
import org.attnskip.Fixtures;
import org.attnskip.export.ModelDirectory;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** attnskip export and generate, end to end through Main.run, on stories260K. */
class ExportGenerateCliTest {
    @TempDir
    Path tmp;

    private CliRun last = new CliRun(0, "", "");

    private int run(String... args) {
        last = CliRun.of(args);
        return last.code();
    }

    private String stdout() {
        return last.out();
    }

    private String stderr() {
        return last.err();
    }

    private Path exportStories() {
        Path folder = Fixtures.model("stories260K");
        Path dir = tmp.resolve("stories260K");
        assertEquals(0, run("export", "--llama2c", folder.resolve("stories260K.bin").toString(),
                "--tokenizer", folder.resolve("tok512.bin").toString(), "-o", dir.toString()), stderr());
        assertTrue(ModelDirectory.isModelDirectory(dir));
        return dir;
    }

    @Test
    void exportThenGreedyGenerateReproducesRunCByteForByte() throws IOException {
        Path dir = exportStories();
        Path folder = Fixtures.model("stories260K");
        assertEquals(0, run("generate", dir.toString(), "--prompt", "Once upon a time", "-n", "200",
                "--temperature", "0", "--device", "cpu"), stderr());
        assertEquals(Files.readString(folder.resolve("golden/once_upon_a_time.txt")), stdout());

        // A bare .onnx with --tokenizer is the same model.
        assertEquals(0, run("generate", dir.resolve("model.onnx").toString(), "--tokenizer",
                folder.resolve("tok512.bin").toString(), "-n", "200", "-t", "0", "--device", "cpu"), stderr());
        assertEquals(Files.readString(folder.resolve("golden/empty.txt")), stdout());
    }

    @Test
    void fp16ExportWithExternalDataGenerates() throws IOException {
        Path folder = Fixtures.model("stories260K");
        Path dir = tmp.resolve("s16");
        assertEquals(0, run("export", "--llama2c", folder.resolve("stories260K.bin").toString(),
                "--tokenizer", folder.resolve("tok512.bin").toString(), "-o", dir.toString(),
                "--dtype", "fp16", "--external-data"), stderr());
        assertTrue(Files.isRegularFile(dir.resolve("model.onnx.data")));
        assertTrue(Files.readString(dir.resolve("attnskip.json")).contains("\"dtype\" : \"fp16\""));
        assertEquals(0, run("generate", dir.toString(), "--prompt", "Once upon a time", "-n", "40", "-t", "0",
                "--device", "cpu"), stderr());
        assertTrue(stdout().startsWith("Once upon a time, there was a little girl named Lily."), stdout());
    }

    @Test
    void cudaOnThisMachineIsExitTwoAndOneLine() {
        Path dir = exportStories();
        assertEquals(2, run("generate", dir.toString(), "-n", "5", "--device", "cuda"));
        String[] lines = stderr().strip().split("\n");
        assertEquals(1, lines.length, stderr());
        assertTrue(lines[0].startsWith("attnskip: CUDA execution provider is not available"), lines[0]);
        assertEquals("", stdout());
    }

    @Test
    void autoFallsBackToTheCpuAndSaysSo() {
        Path dir = exportStories();
        assertEquals(0, run("generate", dir.toString(), "-n", "5", "--device", "auto", "-t", "0"), stderr());
        assertTrue(stderr().contains("running on the CPU"), stderr());
        assertTrue(stdout().startsWith("Once upon"), stdout());
    }

    @Test
    void badExportInputIsExitTwoWithOneLineAndWritesNothing() throws IOException {
        Path folder = Fixtures.model("stories260K");
        Path target = tmp.resolve("never");
        String bin = folder.resolve("stories260K.bin").toString();
        String tok = folder.resolve("tok512.bin").toString();
        String[][] cases = {
                {"export", "--llama2c", tmp.resolve("missing.bin").toString(), "--tokenizer", tok, "-o", target.toString()},
                {"export", "--llama2c", bin, "-o", target.toString()},
                {"export", "--llama2c", bin, "--tokenizer", tok, "-o", target.toString(), "--dtype", "fp8"},
                {"export", "--llama2c", bin, "--tokenizer", tmp.resolve("nope.bin").toString(), "-o", target.toString()},
                {"export", "--llama2c", bin, "--synthetic", "layers=1", "--tokenizer", tok, "-o", target.toString()},
        };
        for (String[] args : cases) {
            assertEquals(2, run(args), String.join(" ", args));
            assertEquals(1, stderr().strip().split("\n").length, stderr());
            assertTrue(stderr().startsWith("attnskip: "), stderr());
        }
        try (Stream<Path> left = Files.list(tmp)) {
            assertEquals(0, left.count(), "nothing was written");
        }
        assertFalse(Files.exists(target));
    }

    @Test
    void badGenerateInputIsExitTwoWithOneLine() {
        Path dir = exportStories();
        String[][] cases = {
                {"generate", tmp.resolve("missing").toString()},
                {"generate", dir.resolve("model.onnx").toString()},
                {"generate", dir.toString(), "--temperature", "-1"},
                {"generate", dir.toString(), "--top-p", "1.5"},
                {"generate", dir.toString(), "-n", "0"},
                {"generate", dir.toString(), "--device", "tpu"},
        };
        for (String[] args : cases) {
            assertEquals(2, run(args), String.join(" ", args));
            assertEquals(1, stderr().strip().split("\n").length, stderr());
            assertEquals("", stdout());
        }
    }
}
