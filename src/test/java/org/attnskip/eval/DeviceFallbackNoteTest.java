package org.attnskip.eval;

import com.fasterxml.jackson.databind.ObjectMapper;
import org.attnskip.CliRun;
import org.attnskip.Fixtures;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** --device auto on a CPU-only machine says it fell back once per command, however many sessions it opens. */
class DeviceFallbackNoteTest {
    @TempDir
    Path tmp;

    @Test
    void sweepOpeningSeveralSessionsPrintsTheFallbackOnce() throws Exception {
        Path model = Fixtures.model("stories260K/stories260K.bin");
        Path text = Fixtures.model("../data/stories260K-samples.jsonl");
        Path out = tmp.resolve("sweep");
        // baseline + two variants = three sessions
        CliRun run = CliRun.of("sweep", model.toString(), "--mode", "drop", "--thresholds", "0.6,1.0",
                "--text", text.toString(), "--max-docs", "1", "--max-tokens", "16", "--bootstrap", "10", "--no-latency",
                "--device", "auto", "--report", out.toString());
        assertEquals(0, run.code(), run.err());
        assumeFellBack(out);
        assertEquals(1, fallbackLines(run.err()), run.err());
    }

    @Test
    void evalOpeningTwoSessionsPrintsTheFallbackOnce() throws Exception {
        Path model = Fixtures.model("stories260K/stories260K.bin");
        Path text = Fixtures.model("../data/stories260K-samples.jsonl");
        Path out = tmp.resolve("eval");
        CliRun run = CliRun.of("eval", "--baseline", model.toString(), "--variant", model.toString(),
                "--text", text.toString(), "--max-docs", "1", "--max-tokens", "16", "--bootstrap", "10", "--no-latency",
                "--device", "auto", "--report", out.toString());
        assertEquals(0, run.code(), run.err());
        assumeFellBack(out);
        assertEquals(1, fallbackLines(run.err()), run.err());
    }

    private static void assumeFellBack(Path report) throws Exception {
        String provider = new ObjectMapper().readTree(report.resolve("report.json").toFile())
                .get("provenance").get("provider_used").asText();
        Assumptions.assumeTrue(provider.equals("cpu"), "CUDA is available here: no fallback to report");
    }

    private static long fallbackLines(String err) {
        return err.lines().filter(l -> l.contains("device auto")).count();
    }
}
