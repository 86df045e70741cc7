package org.attnskip.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.attnskip.CliRun;
import org.attnskip.Fixtures;
import org.attnskip.StoriesExport;
import org.attnskip.onnx.OnnxModelIO;
import org.attnskip.rewrite.RewriteMetadata;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** probe --experiments sensitivity and optimize --auto on stories260K, over a few short documents. */
class ProbeSensitivityCommandTest {
    static final String DOCS = "4";
    static final String TOKENS = "16";
    static final String RESAMPLES = "50";
    static final String SEED = "1234";

    @TempDir
    Path tmp;

    @Test
    void sensitivityReportHasOneRowPerKPerModeAndTheDropCurveIsTheSweep() throws Exception {
        Path model = Fixtures.model("stories260K/stories260K.bin");
        Path text = Fixtures.require("data/stories260K-samples.jsonl");
        Path out = tmp.resolve("probe");
        assertEquals(0, CliRun.of("probe", model.toString(), "--text", text.toString(), "--report", out.toString(),
                "--experiments", "sensitivity", "--tolerance", "top1=0.9", "--noise", "gaussian,shuffle",
                "--prompts", DOCS, "--max-tokens", TOKENS, "--bootstrap", RESAMPLES, "--seed", SEED, "--quiet").code());
        for (String f : List.of("report.json", "report.md", "report.html", "sensitivity-top1.png", "heatmap.png")) {
            assertTrue(Files.size(out.resolve(f)) > 100, f);
        }
        JsonNode report = new ObjectMapper().readTree(out.resolve("report.json").toFile());
        JsonNode curves = report.get("sensitivity").get("curves");
        assertEquals(List.of("drop", "freeze", "random-gaussian", "random-shuffle"), names(curves));
        for (var mode : curves.properties()) {
            JsonNode rows = mode.getValue();
            assertEquals(6, rows.size(), mode.getKey() + ": k = 0..5");
            for (int k = 0; k <= 5; k++) {
                JsonNode row = rows.get(k);
                assertEquals(k, row.get("k").asInt());
                // drop and random change layer k first; freeze's layer k is exact, so k + 1; k = L changes nothing
                int first = mode.getKey().equals("freeze") ? (k + 1 < 5 ? k + 1 : -1) : (k < 5 ? k : -1);
                assertEquals(first, row.get("first_changed_layer").asInt(), mode.getKey() + " k=" + k);
            }
            // k = L is the baseline itself
            assertEquals(1.0, rows.get(5).get("quality").get("top1_agreement").get("value").asDouble(), 0);
            assertTrue(rows.get(0).get("quality").get("top1_agreement").get("value").asDouble() < 0.9, mode.getKey());
        }
        JsonNode recs = report.get("sensitivity").get("recommendations");
        assertEquals(4, recs.size());
        for (JsonNode rec : recs) {
            assertTrue(rec.get("evidence").get("quality").get("top1_agreement").get("value").asDouble() >= 0.9);
        }
        String md = Files.readString(out.resolve("report.md"));
        assertTrue(md.contains("## Recommendation") && md.contains("## Sensitivity: freeze"), md);
        assertTrue(Files.readString(out.resolve("report.html")).contains("data:image/png;base64,"));

        // the sweep at f = 0.6 (k = ceil(0.6 * 5) = 3) on the same documents: the same numbers
        Path sweep = tmp.resolve("sweep");
        assertEquals(0, CliRun.of("sweep", model.toString(), "--mode", "drop", "--thresholds", "0.6", "--text", text.toString(),
                "--max-docs", DOCS, "--max-tokens", TOKENS, "--bootstrap", RESAMPLES, "--seed", SEED, "--no-latency",
                "--report", sweep.toString(), "--quiet").code());
        JsonNode swept = new ObjectMapper().readTree(sweep.resolve("report.json").toFile()).get("points").get(0).get("text");
        JsonNode probed = curves.get("drop").get(3).get("quality");
        for (String metric : List.of("top1_agreement", "mean_kl", "variant_perplexity", "baseline_perplexity")) {
            for (String part : List.of("value", "low", "high")) {
                assertEquals(swept.get(metric).get(part).asDouble(), probed.get(metric).get(part).asDouble(), 0.0,
                        metric + " " + part);
            }
        }
    }

    @Test
    void optimizeAutoAppliesAndRecordsTheRecommendation() throws Exception {
        Path text = Fixtures.require("data/stories260K-samples.jsonl");
        Path dir = StoriesExport.export(tmp, "model");
        for (String mode : List.of("drop", "freeze")) {
            Path out = tmp.resolve("fast-" + mode + ".onnx");
            assertEquals(0, CliRun.of("optimize", dir.toString(), "-o", out.toString(), "--auto", "--mode", mode,
                    "--tolerance", "top1=0.6", "--text", text.toString(), "--prompts", DOCS, "--max-tokens", TOKENS,
                    "--bootstrap", RESAMPLES, "--quiet").code());
            Map<String, String> meta = RewriteMetadata.read(OnnxModelIO.load(out).proto());
            assertEquals(mode, meta.get("mode"));
            assertFalse(meta.get("layers").isEmpty(), "a loose tolerance lets some layer change: " + meta);
            assertEquals(meta.get("layers"), meta.get("auto_layers"), "the graph has the recommended layers");
            assertEquals("top1>=0.6", meta.get("auto_tolerance"));
            assertTrue(Double.parseDouble(meta.get("auto_top1_agreement")) >= 0.6, meta.toString());
            assertTrue(meta.get("auto_recommendation").matches("(k = \\d+|non-contiguous drop).*"), meta.toString());
        }
    }

    private static List<String> names(JsonNode object) {
        return object.properties().stream().map(Map.Entry::getKey).toList();
    }
}
