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

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** probe and optimize --auto with both freeze flavours on stories260K, over a few short documents. */
class ProbeFreezeFlavoursTest {
    @TempDir
    Path tmp;

    @Test
    void probeMeasuresBothFlavoursAndAutoAppliesTheChosenOne() throws Exception {
        Path text = Fixtures.require("data/stories260K-samples.jsonl");
        Path dir = StoriesExport.export(tmp, "model");
        Path out = tmp.resolve("probe");
        assertEquals(0, CliRun.of("probe", dir.toString(), "--text", text.toString(), "--report", out.toString(),
                "--experiments", "sensitivity", "--modes", "freeze,freeze-single-input", "--prompts", "4",
                "--max-tokens", "16", "--bootstrap", "50", "--quiet").code());
        JsonNode curves = new ObjectMapper().readTree(out.resolve("report.json").toFile()).get("sensitivity").get("curves");
        List<String> names = new ArrayList<>();
        curves.fieldNames().forEachRemaining(names::add);
        assertEquals(List.of("freeze", "freeze-single-input"), names);
        for (String mode : names) {
            JsonNode rows = curves.get(mode);
            for (int k = 0; k <= 5; k++) {
                assertEquals(k + 1 < 5 ? k + 1 : -1, rows.get(k).get("first_changed_layer").asInt(), mode + " k=" + k);
            }
            // layer k is exact in both flavours: freezing at L-1 changes nothing, at 0 a lot
            assertTrue(kl(rows.get(4)) < 1e-6, mode + " k=4: " + kl(rows.get(4)));
            assertTrue(kl(rows.get(0)) > 0.05, mode + " k=0: " + kl(rows.get(0)));
        }
        assertTrue(kl(curves.get("freeze").get(1)) != kl(curves.get("freeze-single-input").get(1)), "two different models");

        for (String flavour : List.of("paper", "single-input")) {
            Path fast = tmp.resolve("fast-" + flavour);
            assertEquals(0, CliRun.of("optimize", dir.toString(), "-o", fast.toString(), "--auto", "--mode", "freeze",
                    "--freeze-kv", flavour, "--tolerance", "top1=0.6", "--text", text.toString(), "--prompts", "4",
                    "--max-tokens", "16", "--bootstrap", "50", "--quiet").code());
            Map<String, String> meta = RewriteMetadata.read(OnnxModelIO.load(fast).proto());
            assertEquals("freeze", meta.get("mode"));
            assertEquals(flavour, meta.get("freeze_kv"));
            assertEquals(meta.get("layers"), meta.get("auto_layers"), "the graph has the recommended layers");
        }
    }

    private static double kl(JsonNode row) {
        return row.get("quality").get("mean_kl").get("value").asDouble();
    }
}
