package org.attnskip.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.attnskip.CliRun;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The README's main command end to end: the default model, rewritten and evaluated (fewer repeats). */
class DemoCommandTest {
    @TempDir
    Path tmp;

    @Test
    void demoBuildsRewritesAndEvaluatesTheDefaultModel() throws Exception {
        Path out = tmp.resolve("demo");
        CliRun run = CliRun.of("demo", "--report", out.toString(), "--device", "cpu", "--quiet", "--max-docs", "3",
                "--max-items", "3", "--repeats", "2", "--warmup", "1", "--bootstrap", "100");
        assertEquals(0, run.code(), run.err());
        for (String file : List.of("report.json", "report.md", "report.html", "latency-prefill.png", "latency-decode.png")) {
            assertTrue(Files.size(out.resolve(file)) > 0, file);
        }
        JsonNode report = new ObjectMapper().readTree(out.resolve("report.json").toFile());
        // 12 layers, --drop-attn-above 0.6: k = ceil(7.2) = 8
        assertEquals("drop", report.at("/variant/rewrite/mode").asText());
        assertEquals("8,9,10,11", report.at("/variant/rewrite/layers").asText());
        assertEquals(3, report.at("/text/documents").asInt());
        assertEquals(3, report.get("tasks").size());
        for (JsonNode task : report.get("tasks")) {
            assertEquals(3, task.get("items").asInt(), task.toString());
        }
        JsonNode latency = report.get("latency");
        assertEquals(List.of(128, 512), List.of(latency.at("/prefill/0/tokens").asInt(), latency.at("/prefill/1/tokens").asInt()));
        assertEquals(List.of(256, 1024), List.of(latency.at("/decode/0/tokens").asInt(), latency.at("/decode/1/tokens").asInt()));
        for (JsonNode point : List.of(latency.at("/prefill/0"), latency.at("/prefill/1"), latency.at("/decode/0"), latency.at("/decode/1"))) {
            assertTrue(point.at("/baseline/median_ms").asDouble() > 0 && point.get("ratio").asDouble() > 0, point.toString());
        }
        // The variant keeps the cache of 8 layers out of 12.
        assertTrue(latency.get("baseline_kv_bytes").asLong() > 0);
        assertEquals(latency.get("baseline_kv_bytes").asLong() * 8, latency.get("variant_kv_bytes").asLong() * 12);
    }
}
