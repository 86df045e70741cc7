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

class GreedyAgreementTest {
    @TempDir
    Path tmp;

    @Test
    void prefixAndRougeLByHand() {
        assertEquals(2, GreedyAgreement.commonPrefix(new int[] {1, 2, 3}, new int[] {1, 2, 4}));
        assertEquals(0, GreedyAgreement.commonPrefix(new int[] {5}, new int[] {1, 5}));
        // LCS of (1 2 3 4) and (1 3 4 5) is (1 3 4): P = R = 3/4
        assertEquals(0.75, GreedyAgreement.rougeL(new int[] {1, 2, 3, 4}, new int[] {1, 3, 4, 5}), 1e-12);
        // LCS 2 of lengths 4 and 2: P = 1, R = 1/2, F = 2/3
        assertEquals(2.0 / 3, GreedyAgreement.rougeL(new int[] {1, 2, 3, 4}, new int[] {2, 4}), 1e-12);
        assertEquals(0, GreedyAgreement.rougeL(new int[] {1}, new int[] {2}), 0);
        assertEquals(1, GreedyAgreement.rougeL(new int[0], new int[0]), 0);
    }

    @Test
    void evalReportsGreedyAgreement() throws Exception {
        Path bin = Fixtures.model("stories260K/stories260K.bin");
        Path text = Fixtures.require("data/stories260K-samples.jsonl");
        Path base = tmp.resolve("base");
        assertEquals(0, CliRun.of("export", "--llama2c", bin.toString(), "--tokenizer",
                bin.resolveSibling("tok512.bin").toString(), "-o", base.toString()).code());
        Path drop = tmp.resolve("drop");
        assertEquals(0, CliRun.of("optimize", base.toString(), "-o", drop.toString(), "--drop-attn-above", "0.6").code());

        JsonNode same = eval(base, base, "same");
        assertEquals(1.0, same.at("/generation/rouge_l/value").asDouble(), 0);
        assertEquals(1.0, same.at("/generation/rouge_l/low").asDouble(), 0);
        assertTrue(same.at("/generation/exact_prefix_tokens/value").asDouble() > 20, same.at("/generation").toString());

        JsonNode dropped = eval(base, drop, "drop");
        double rouge = dropped.at("/generation/rouge_l/value").asDouble();
        assertTrue(rouge > 0 && rouge < 1, "dropping attention in layers 3-4 changes the continuations: " + rouge);
        assertTrue(dropped.at("/generation/exact_prefix_tokens/value").asDouble()
                < same.at("/generation/exact_prefix_tokens/value").asDouble());
    }

    private JsonNode eval(Path baseline, Path variant, String name) throws Exception {
        Path report = tmp.resolve(name);
        CliRun r = CliRun.of("eval", "--baseline", baseline.toString(), "--variant", variant.toString(), "--text",
                Fixtures.require("data/stories260K-samples.jsonl").toString(), "--max-docs", "6", "--max-tokens", "48",
                "--no-latency", "--bootstrap", "50", "--device", "cpu", "--quiet", "--report", report.toString());
        assertEquals(0, r.code(), r.err());
        return new ObjectMapper().readTree(report.resolve("report.json").toFile());
    }
}
