package org.attnskip.eval;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.attnskip.CliRun;
import org.attnskip.Fixtures;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Greedy-generation agreement per sweep point: measured for freeze, left out for random. */
class SweepGenerationTest {
    @TempDir
    Path tmp;

    @Test
    void freezeMeasuresGenerationAtEveryPoint() throws Exception {
        JsonNode points = sweep("freeze").get("points");
        JsonNode frozen = points.get(0);
        JsonNode same = points.get(1);
        assertEquals(Evaluation.SWEEP_GENERATION_PROMPTS, frozen.at("/generation/prompts").asInt(), frozen.toString());
        assertEquals(1.0, same.at("/generation/rouge_l/value").asDouble(), 0);
        double rouge = frozen.at("/generation/rouge_l/value").asDouble();
        assertTrue(rouge >= 0 && rouge < 1, "freezing every layer changes the continuations: " + rouge);
    }

    @Test
    void randomHasNoGeneration() throws Exception {
        JsonNode points = sweep("random").get("points");
        assertTrue(points.get(0).get("generation").isNull(), points.get(0).toString());
    }

    private JsonNode sweep(String mode) throws Exception {
        Path model = Fixtures.model("stories260K/stories260K.bin");
        Path text = Fixtures.model("../data/stories260K-samples.jsonl");
        Path out = tmp.resolve(mode);
        CliRun run = CliRun.of("sweep", model.toString(), "--mode", mode, "--thresholds", "0,1.0", "--text", text.toString(),
                "--max-docs", "8", "--max-tokens", "24", "--bootstrap", "20", "--no-latency", "--device", "cpu", "--quiet",
                "--report", out.toString());
        assertEquals(0, run.code(), run.err());
        return new ObjectMapper().readTree(out.resolve("report.json").toFile());
    }
}
