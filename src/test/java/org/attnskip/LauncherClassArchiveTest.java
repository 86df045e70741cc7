package org.attnskip;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The ./attnskip launcher's class-data archive for generate: the first run writes one archive (no
 * temporary file left), the next runs map it, a damaged archive is ignored without a word, and
 * ATTNSKIP_CLASS_ARCHIVE=off writes nothing; the text is the same byte for byte every time. Runs the
 * launcher as a user does, on the packaged jar, so it is skipped where none is built yet.
 */
class LauncherClassArchiveTest {
    @TempDir
    Path tmp;

    @Test
    void generateWritesMapsAndSurvivesADamagedArchive() throws Exception {
        PackagedLauncher.assumeBuilt();
        Path folder = Fixtures.model("stories260K");
        Path model = tmp.resolve("m");
        CliRun export = CliRun.of("export", "--llama2c", folder.resolve("stories260K.bin").toString(),
                "--tokenizer", folder.resolve("tok512.bin").toString(), "--graph", "fused", "-o", model.toString());
        assertEquals(0, export.code(), export.err());
        String golden = Files.readString(folder.resolve("golden/once_upon_a_time.txt"));
        Path cache = tmp.resolve("cache");
        Path archives = cache.resolve("attnskip");

        Run first = generate(model, cache, Map.of());
        assertEquals(golden, first.out, first.err);
        List<Path> written = list(archives);
        assertEquals(1, written.size(), "one archive (or one marker that this java cannot write one): " + written);
        Path archive = written.get(0);
        Assumptions.assumeTrue(archive.toString().endsWith(".jsa"), "skipped: this java cannot write a class archive");

        Run mapped = generate(model, cache, Map.of());
        assertEquals(golden, mapped.out, mapped.err);
        assertEquals(List.of(archive), list(archives), "the second run maps the archive and writes no other");

        archive.toFile().setWritable(true);
        Files.write(archive, new byte[100_000]); // not an archive: the JVM refuses it and runs without
        Run damaged = generate(model, cache, Map.of());
        assertEquals(golden, damaged.out, damaged.err);
        assertFalse(damaged.err.contains("cds") || damaged.err.contains("archive"), damaged.err);

        Path other = tmp.resolve("other-cache");
        Run off = generate(model, other, Map.of("ATTNSKIP_CLASS_ARCHIVE", "off"));
        assertEquals(golden, off.out, off.err);
        // (ONNX Runtime keeps a telemetry id under the cache directory: only attnskip/ is ours)
        assertFalse(Files.exists(other.resolve("attnskip")), "nothing written with the archive turned off");
    }

    private record Run(String out, String err) {
    }

    private Run generate(Path model, Path cache, Map<String, String> env) throws IOException, InterruptedException {
        ProcessBuilder pb = PackagedLauncher.command("generate", model.toString(), "--prompt",
                "Once upon a time", "-n", "200", "-t", "0", "--device", "cpu", "--threads", "1");
        pb.environment().put("XDG_CACHE_HOME", cache.toString());
        pb.environment().putAll(env);
        Path out = tmp.resolve("out.txt");
        Path err = tmp.resolve("err.txt");
        pb.redirectOutput(out.toFile()).redirectError(err.toFile());
        int code = pb.start().waitFor();
        Run run = new Run(Files.readString(out, StandardCharsets.UTF_8), Files.readString(err, StandardCharsets.UTF_8));
        assertEquals(0, code, run.err);
        assertTrue(run.err.contains("achieved tok/s"), run.err);
        return run;
    }

    private static List<Path> list(Path dir) throws IOException {
        try (Stream<Path> files = Files.list(dir)) {
            return files.sorted().toList();
        }
    }
}
