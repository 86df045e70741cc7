package org.attnskip.eval;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.attnskip.CliRun;
import org.attnskip.Fixtures;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The sweep and eval commands end to end on stories260K, on a small subset of the data. */
class SweepAndEvalCommandTest {
    @TempDir
    Path tmp;

    @Test
    void sweepDropOnStories260KWritesTheFullReport() throws Exception {
        Path model = Fixtures.model("stories260K/stories260K.bin");
        Path text = Fixtures.model("../data/stories260K-samples.jsonl");
        Path out = tmp.resolve("report");
        int code = CliRun.of("sweep", model.toString(), "--mode", "drop", "--thresholds", "0,0.6,1.0",
                "--text", text.toString(), "--max-docs", "6", "--tasks", "eval/tasks", "--max-items", "8",
                "--bootstrap", "100", "--prefill-lengths", "16", "--decode-contexts", "16", "--warmup", "1",
                "--repeats", "2", "--decode-steps", "2", "--device", "auto", "--report", out.toString(), "--quiet").code();
        assertEquals(0, code);
        for (String f : new String[] {"report.json", "report.md", "report.html", "sweep-quality.png", "sweep-latency.png",
                "sweep-pareto.png"}) {
            assertTrue(Files.size(out.resolve(f)) > 100, f);
        }
        JsonNode json = new ObjectMapper().readTree(out.resolve("report.json").toFile());
        JsonNode points = json.get("points");
        assertEquals(3, points.size());
        // f = 1.0 changes no layer: the variant is the baseline
        JsonNode same = points.get(2);
        assertEquals(0, same.get("layers").size());
        assertEquals(1.0, same.get("text").get("top1_agreement").get("value").asDouble(), 0);
        assertEquals(0.0, same.get("text").get("perplexity_difference").get("value").asDouble(), 0);
        // f = 0 drops every layer's attention: stories260K's perplexity rises and agreement falls
        JsonNode all = points.get(0);
        assertEquals(5, all.get("layers").size());
        assertTrue(all.get("text").get("variant_perplexity").get("value").asDouble()
                > 2 * all.get("text").get("baseline_perplexity").get("value").asDouble());
        assertTrue(all.get("text").get("top1_agreement").get("value").asDouble() < 0.5);
        assertEquals(3, all.get("tasks").size());
        // the paired log-likelihood difference is the difference of the means, and zero when nothing changed
        for (JsonNode task : all.get("tasks")) {
            JsonNode d = task.get("log_likelihood_difference");
            assertEquals(task.at("/variant_log_likelihood/value").asDouble() - task.at("/baseline_log_likelihood/value").asDouble(),
                    d.get("value").asDouble(), 1e-9, task.toString());
            assertTrue(d.get("low").asDouble() <= d.get("value").asDouble() && d.get("value").asDouble() <= d.get("high").asDouble());
        }
        assertTrue(all.at("/tasks/1/log_likelihood_difference/value").asDouble() < 0, "recall-name without attention");
        for (JsonNode task : same.get("tasks")) {
            assertEquals(0.0, task.at("/log_likelihood_difference/high").asDouble(), 0, task.toString());
            assertEquals(0.0, task.at("/log_likelihood_difference/low").asDouble(), 0, task.toString());
        }
        // greedy generation per point: the unchanged variant continues exactly as the baseline, the changed one does not
        assertEquals(1.0, same.at("/generation/rouge_l/value").asDouble(), 0);
        assertTrue(all.at("/generation/rouge_l/value").asDouble() < 1, all.get("generation").toString());
        assertTrue(all.at("/generation/exact_prefix_tokens/value").asDouble()
                < same.at("/generation/exact_prefix_tokens/value").asDouble(), all.get("generation").toString());
        assertEquals("cpu", json.get("provenance").get("provider_used").asText());
        assertTrue(json.get("provenance").get("fallback_note").asText().contains("CUDA"));
        assertTrue(Files.readString(out.resolve("report.html")).contains("data:image/png;base64,"));
        String md = Files.readString(out.resolve("report.md"));
        assertTrue(md.contains("|threshold|layers changed|"));
        assertTrue(md.contains("|greedy identical lead tokens|greedy ROUGE-L|"), md);
    }

    @Test
    void evalReportShowsThePairedLogLikelihoodDifferenceAndProcessWidePeakMemory() throws Exception {
        Path model = Fixtures.model("stories260K/stories260K.bin");
        Path out = tmp.resolve("eval");
        int code = CliRun.of("eval", "--baseline", model.toString(), "--variant", model.toString(), "--tasks",
                "eval/tasks/recall-object.jsonl", "--max-items", "5", "--bootstrap", "20", "--prefill-lengths", "8",
                "--decode-contexts", "8", "--warmup", "0", "--repeats", "1", "--decode-steps", "1", "--device", "cpu",
                "--report", out.toString(), "--quiet").code();
        assertEquals(0, code);
        String md = Files.readString(out.resolve("report.md"));
        assertTrue(md.contains("|acc variant - baseline|gold log-likelihood variant - baseline|same answer|"), md);
        assertTrue(md.contains("|peak memory of the whole process: baseline and variant together, not per variant"), md);
        JsonNode json = new ObjectMapper().readTree(out.resolve("report.json").toFile());
        assertEquals(0.0, json.at("/tasks/0/log_likelihood_difference/value").asDouble(), 0, json.at("/tasks/0").toString());
        assertTrue(json.at("/latency/process_peak_memory/bytes").asLong() > 0, json.at("/latency").toString());
    }

    @Test
    void deviceCudaOnACpuOnlyMachineExitsWithTwoAndOneLine() {
        Path model = Fixtures.model("stories260K/stories260K.bin");
        CliRun run = CliRun.of("eval", "--baseline", model.toString(), "--variant", model.toString(), "--device", "cuda",
                "--no-latency", "--report", tmp.resolve("r").toString(), "--quiet");
        int code = run.code();
        String message = run.err().strip();
        org.junit.jupiter.api.Assumptions.assumeFalse(code == 0, "CUDA is available here");
        assertEquals(2, code);
        assertEquals(1, message.lines().count(), message);
        assertTrue(message.contains("CUDA"), message);
    }
}
