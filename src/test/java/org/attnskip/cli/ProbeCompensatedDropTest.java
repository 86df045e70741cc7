package org.attnskip.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.attnskip.CliRun;
import org.attnskip.Fixtures;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** probe --calibration-text: calibrated drop measured as one more mode, next to plain drop, on stories260K. */
class ProbeCompensatedDropTest {
    @TempDir
    Path tmp;

    @Test
    void calibrationTextAddsTheCompensatedCurveAndTheOverallRecommendation() throws Exception {
        Path checkpoint = Fixtures.model("stories260K/stories260K.bin");
        Path text = Fixtures.require("data/stories260K-samples.jsonl");
        Path dir = tmp.resolve("model");
        assertEquals(0, Main.run("export", "--llama2c", checkpoint.toString(), "--tokenizer",
                checkpoint.resolveSibling("tok512.bin").toString(), "-o", dir.toString()));
        Path out = tmp.resolve("probe");
        // calibrated on eval/stories.txt, measured on the shared samples: different text
        CliRun r = CliRun.of("probe", dir.toString(), "--text", text.toString(), "--report", out.toString(),
                "--experiments", "sensitivity", "--modes", "drop", "--calibration-text", "eval/stories.txt",
                "--calibration-tokens", "2000", "--prompts", "6", "--max-tokens", "32", "--bootstrap", "50", "--quiet");
        assertEquals(0, r.code(), r.err());
        JsonNode report = new ObjectMapper().readTree(out.resolve("report.json").toFile());
        JsonNode curves = report.get("sensitivity").get("curves");
        List<String> names = new ArrayList<>();
        curves.fieldNames().forEachRemaining(names::add);
        assertEquals(List.of("drop", "drop-compensated"), names);
        JsonNode plain = curves.get("drop");
        JsonNode compensated = curves.get("drop-compensated");
        assertEquals(6, compensated.size());
        assertTrue(kl(compensated.get(5)) < 1e-6, "k = L changes nothing: " + kl(compensated.get(5)));
        for (int k = 0; k <= 1; k++) {
            // dropping 4 or 5 of 5 layers: the maps remove a large share of plain drop's KL (about 0.25-0.3 when written)
            assertTrue(kl(compensated.get(k)) < 0.9 * kl(plain.get(k)),
                    "k=" + k + ": compensated " + kl(compensated.get(k)) + " vs plain " + kl(plain.get(k)));
        }
        // the maps cost FLOPs: at the same layers compensated drop saves less attention work than plain drop
        long plainSaved = plain.get(3).get("attention_flops_saved_per_token").asLong();
        long compensatedSaved = compensated.get(3).get("attention_flops_saved_per_token").asLong();
        assertEquals(plainSaved - 2L * 2 * (64 * 64 + 64), compensatedSaved);
        assertEquals("linear", report.get("config").get("compensate").asText());
        assertFalse(report.get("sensitivity").get("overall").isMissingNode());
        assertTrue(r.out().contains("recommended drop-compensated"), r.out());
        assertTrue(r.out().contains("recommended overall: "), r.out());
        String md = Files.readString(out.resolve("report.md"));
        assertTrue(md.contains("Overall recommendation"), md);
        assertTrue(Files.size(out.resolve("sensitivity-kl.png")) > 0);
    }

    @Test
    void compensatedModeWithoutCalibrationTextIsRefused() {
        CliRun r = CliRun.of("probe", "nowhere", "--report", tmp.resolve("out").toString(), "--modes", "drop-compensated");
        assertEquals(2, r.code(), r.err());
        assertEquals(1, r.err().strip().lines().count(), r.err());
        assertTrue(r.err().contains("--calibration-text"), r.err());
        assertFalse(Files.exists(tmp.resolve("out")));
    }

    private static double kl(JsonNode row) {
        return row.get("quality").get("mean_kl").get("value").asDouble();
    }
}
