package org.attnskip.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.attnskip.CliRun;
import org.attnskip.Fixtures;
import org.attnskip.StoriesExport;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** probe --experiments switch on a model directory: it runs from the exported weights, or says why not. */
class ProbeSwitchOnModelDirectoryTest {
    @TempDir
    Path tmp;

    @Test
    void exportedDirectoryGivesTheCheckpointsSwitchRows() throws IOException {
        Path folder = Fixtures.model("stories260K");
        Path dir = StoriesExport.export(tmp, "stories260K");

        JsonNode fromDir = probeSwitch(dir, "dir");
        JsonNode fromBin = probeSwitch(folder.resolve("stories260K.bin"), "bin");

        assertEquals(5, fromDir.get("switch_experiment").get("layers").size(), "one row per layer of stories260K");
        assertFalse(fromDir.get("notes").toString().contains("switch experiment skipped"), fromDir.get("notes").toString());
        assertEquals(fromBin.get("switch_experiment"), fromDir.get("switch_experiment"),
                "the same weights give the same switch rows");
    }

    @Test
    void rewrittenDirectoryIsSkippedWithTheReason() throws IOException {
        Path dir = StoriesExport.export(tmp, "stories260K");
        Path fast = tmp.resolve("fast");
        CliRun optimize = CliRun.of("optimize", dir.toString(), "-o", fast.toString(), "--drop-attn-above", "0.6");
        assertEquals(0, optimize.code(), optimize.err());

        JsonNode report = probeSwitch(fast, "fast");

        assertTrue(report.get("switch_experiment").isNull(), report.toString());
        String notes = report.get("notes").toString();
        assertTrue(notes.contains("switch experiment skipped") && notes.contains("attnskip.mode=drop"), notes);
    }


    private JsonNode probeSwitch(Path model, String name) throws IOException {
        Path pairs = tmp.resolve("pairs.jsonl");
        Files.write(pairs, Files.readAllLines(Path.of("eval/probe/country_pairs.jsonl")).subList(0, 3));
        Path out = tmp.resolve("report-" + name);
        CliRun probe = CliRun.of("probe", model.toString(), "--text", Fixtures.require("data/stories260K-samples.jsonl").toString(),
                "--report", out.toString(), "--experiments", "switch", "--pairs", pairs.toString(), "--prompts", "4",
                "--quiet");
        assertEquals(0, probe.code(), probe.err());
        return new ObjectMapper().readTree(out.resolve("report.json").toFile());
    }
}
