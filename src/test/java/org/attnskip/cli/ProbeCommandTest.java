package org.attnskip.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.attnskip.CliRun;
import org.attnskip.Fixtures;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ProbeCommandTest {
    @TempDir
    Path tmp;

    @Test
    void writesAReportForStories260K() throws Exception {
        Path model = Fixtures.model("stories260K/stories260K.bin");
        Path text = Fixtures.require("data/stories260K-samples.jsonl");
        Path pairs = tmp.resolve("pairs.jsonl");
        Files.write(pairs, List.of(Files.readAllLines(Path.of("eval/probe/country_pairs.jsonl")).subList(0, 2).toArray(new String[0])));
        Path out = tmp.resolve("report");
        int code = CliRun.of("probe", model.toString(), "--text", text.toString(), "--report", out.toString(),
                "--prompts", "4", "--max-tokens", "16", "--pairs", pairs.toString(), "--experiments", "importance,switch,representations",
                "--bootstrap", "20", "--quiet").code();
        assertEquals(0, code);
        JsonNode report = new ObjectMapper().readTree(out.resolve("report.json").toFile());
        assertEquals(6, report.get("representations").size(), "5 layers + the last output");
        assertEquals(5, report.get("importance").size());
        assertEquals(5, report.get("switch_experiment").get("layers").size());
        assertEquals(5, report.get("sensitivity").get("single_drops").size(), "importance also drops each layer alone");
        for (JsonNode r : report.get("representations")) {
            double e = r.get("prompt_entropy").asDouble();
            assertTrue(e > 0 && e <= 1, "normalised prompt entropy " + e);
            JsonNode invariance = r.get("invariance");
            assertEquals(List.of("word_dropout", "adjacent_swap", "character_noise"), List.copyOf(iterable(invariance.fieldNames())),
                    "by default every augmentation kind is measured");
            for (JsonNode kind : invariance) {
                assertTrue(kind.get("info_nce").isNumber() && kind.get("lidar").asDouble() >= 0, kind.toString());
            }
        }
        assertTrue(Files.readString(out.resolve("report.md")).contains("|layer|attention 1 - cos|block 1 - cos|"));
    }

    private static <T> List<T> iterable(java.util.Iterator<T> it) {
        List<T> out = new java.util.ArrayList<>();
        it.forEachRemaining(out::add);
        return out;
    }

    @Test
    void readsAHuggingFaceTokenizerJson() throws Exception {
        Path model = Fixtures.model("ortgenai-llama-fp16/model.onnx");
        Path out = tmp.resolve("hf");
        int code = CliRun.of("probe", model.toString(), "--tokenizer", model.resolveSibling("tokenizer.json").toString(),
                "--text", Fixtures.require("data/stories260K-samples.jsonl").toString(), "--report", out.toString(),
                "--prompts", "3", "--max-tokens", "12", "--experiments", "representations", "--quiet").code();
        assertEquals(0, code);
        JsonNode reps = new ObjectMapper().readTree(out.resolve("report.json").toFile()).get("representations");
        assertTrue(reps.size() >= 2, "one row per stream: " + reps);
    }

    @Test
    void repeatedAugmentationIsBadInput() {
        Path model = Fixtures.model("stories260K/stories260K.bin");
        assertEquals(2, CliRun.of("probe", model.toString(), "--report", tmp.resolve("r").toString(),
                "--text", Fixtures.require("data/stories260K-samples.jsonl").toString(),
                "--augmentation", "WORD_DROPOUT,WORD_DROPOUT", "--quiet").code());
    }

    @Test
    void missingPromptsFileIsBadInput() {
        Path model = Fixtures.model("stories260K/stories260K.bin");
        assertEquals(2, CliRun.of("probe", model.toString(), "--text", tmp.resolve("none.jsonl").toString(),
                "--report", tmp.resolve("r").toString()).code());
    }
}
