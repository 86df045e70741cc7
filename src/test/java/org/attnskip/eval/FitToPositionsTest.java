package org.attnskip.eval;

import org.attnskip.CliRun;
import org.attnskip.Fixtures;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Latency points and documents that need more positions than the model has are left out, and said so. */
class FitToPositionsTest {
    @TempDir
    Path tmp;

    @Test
    void pointsPastTheEndAreDropped() {
        var config = new LatencyBench.Config(List.of(64, 256, 512), List.of(64, 252, 253), 1, 2, 4, 0);
        List<String> notes = new ArrayList<>();
        var fitted = config.fittedTo(256, notes::add);
        assertEquals(List.of(64, 256), fitted.prefillLengths());
        assertEquals(List.of(64, 252), fitted.decodeContexts(), "252 + 4 steps = 256 positions fit, 253 does not");
        assertEquals(2, notes.size(), String.valueOf(notes));
    }

    @Test
    void evalOnStoriesDeep12WithDefaultContextsRuns() {
        Path bin = Fixtures.model("stories-deep12/stories-deep12.bin");
        CliRun r = CliRun.of("eval", "--baseline", bin.toString(), "--variant", bin.toString(), "--tokenizer",
                Fixtures.model("stories260K/tok512.bin").toString(), "--prefill-lengths", "64,512", "--decode-contexts", "64,256",
                "--warmup", "0", "--repeats", "1", "--decode-steps", "2", "--device", "cpu", "--quiet",
                "--report", tmp.resolve("r").toString());
        assertEquals(0, r.code(), r.err());
        assertTrue(r.err().contains("skipping decode at context 256"), r.err());
        assertTrue(r.err().contains("skipping prefill of 512 tokens"), r.err());
    }
}
