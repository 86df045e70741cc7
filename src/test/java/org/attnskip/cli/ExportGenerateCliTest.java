package org.attnskip.cli;

import org.attnskip.CliRun;
import org.attnskip.Fixtures;
import org.attnskip.export.Llama2cCheckpoint;
import org.attnskip.export.ModelDirectory;
import org.attnskip.export.TinyHfCheckpoint;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
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
        // The rate counts single-token decode runs only: positions 200 minus the prompt's, prefilled at once.
        java.util.regex.Matcher rate = java.util.regex.Pattern.compile(
                "achieved tok/s: [0-9.]+ on cpu \\(decode: (\\d+) steps in ([0-9.]+) s, ([0-9.]+) s CPU on the calling thread; "
                        + "prefill of (\\d+) tokens [0-9.]+ ms\\)")
                .matcher(stderr());
        assertTrue(rate.find(), stderr());
        assertEquals(200, Integer.parseInt(rate.group(1)) + Integer.parseInt(rate.group(4)), stderr());
        // The decode loop's thread cannot have run longer than the loop itself (1 ms of rounding).
        assertTrue(Double.parseDouble(rate.group(3)) <= Double.parseDouble(rate.group(2)) + 0.001, stderr());

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

    /** One bad export command line and a piece of the one line it must print. */
    private record BadExport(String mustSay, String... args) {
    }

    @Test
    void badExportInputIsExitTwoWithOneLineAndWritesNothing() throws IOException {
        Path folder = Fixtures.model("stories260K");
        Path inputs = Files.createDirectory(tmp.resolve("inputs"));
        String target = tmp.resolve("never").toString();
        String bin = folder.resolve("stories260K.bin").toString();
        String tok = folder.resolve("tok512.bin").toString();

        byte[] full = Files.readAllBytes(folder.resolve("stories260K.bin"));
        String truncated = Files.write(inputs.resolve("truncated.bin"), Arrays.copyOf(full, full.length / 2)).toString();
        String wrongMagic = Files.write(inputs.resolve("magic.bin"), llama2cHeader(0x616b3433, 1)).toString(); // "ak43"
        String wrongVersion = Files.write(inputs.resolve("version.bin"), llama2cHeader(Llama2cCheckpoint.MAGIC, 3)).toString();
        Map<String, Object> gpt2 = TinyHfCheckpoint.llamaConfig();
        gpt2.put("architectures", List.of("GPT2LMHeadModel"));
        String gpt2Folder = TinyHfCheckpoint.writeConfig(inputs.resolve("gpt2"), gpt2).toString(); // and no tokenizer.json

        BadExport[] cases = {
                new BadExport("checkpoint not found", "export", "--llama2c", tmp.resolve("missing.bin").toString(),
                        "--tokenizer", tok, "-o", target),
                new BadExport("needs --tokenizer", "export", "--llama2c", bin, "-o", target),
                new BadExport("fp8", "export", "--llama2c", bin, "--tokenizer", tok, "-o", target, "--dtype", "fp8"),
                new BadExport("no such tokenizer file", "export", "--llama2c", bin, "--tokenizer",
                        tmp.resolve("nope.bin").toString(), "-o", target),
                new BadExport("mutually exclusive", "export", "--llama2c", bin, "--synthetic", "layers=1",
                        "--tokenizer", tok, "-o", target),
                new BadExport("truncated llama2.c checkpoint", "export", "--llama2c", truncated, "--tokenizer", tok, "-o", target),
                new BadExport("'ak42' magic", "export", "--llama2c", wrongMagic, "--tokenizer", tok, "-o", target),
                new BadExport("unsupported llama2.c checkpoint version 3", "export", "--llama2c", wrongVersion,
                        "--tokenizer", tok, "-o", target),
                new BadExport("unsupported architecture GPT2LMHeadModel", "export", "--hf", gpt2Folder, "-o", target),
        };
        for (BadExport c : cases) {
            assertEquals(2, run(c.args()), String.join(" ", c.args()));
            assertEquals(1, stderr().strip().split("\n").length, stderr());
            assertTrue(stderr().startsWith("attnskip: "), stderr());
            assertTrue(stderr().contains(c.mustSay()), c.mustSay() + " not in: " + stderr());
        }
        try (Stream<Path> left = Files.list(tmp); Stream<Path> inputFiles = Files.list(inputs)) {
            assertEquals(List.of(inputs), left.toList(), "nothing was written beside the inputs");
            assertEquals(4, inputFiles.count(), "nothing was written among the inputs");
        }
        assertFalse(Files.exists(Path.of(target)));
    }

    /** The 256-byte header of a llama2.c v1 file (a 1-layer toy) with the given magic and version. */
    private static byte[] llama2cHeader(int magic, int version) {
        ByteBuffer b = ByteBuffer.allocate(256).order(ByteOrder.LITTLE_ENDIAN);
        b.putInt(magic).putInt(version).putInt(16).putInt(32).putInt(1).putInt(2).putInt(2).putInt(260).putInt(8);
        return b.array();
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
