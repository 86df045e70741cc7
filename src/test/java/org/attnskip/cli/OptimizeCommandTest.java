package org.attnskip.cli;

import org.attnskip.CliRun;
import org.attnskip.Fixtures;
import org.attnskip.onnx.OnnxModelIO;
import org.attnskip.rewrite.RewriteMetadata;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.IntStream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class OptimizeCommandTest {
    @TempDir
    Path tmp;

    static CliRun cli(String... args) {
        return CliRun.of(args);
    }

    @Test
    void modelDirectoryInGivesModelDirectoryOutWithConfigCarriedOver() throws Exception {
        Path dir = Fixtures.model("ortgenai-llama-fp16");
        Path out = tmp.resolve("fast");
        CliRun r = cli("optimize", dir.toString(), "-o", out.toString(), "--drop-attn-above", "0.5", "--json");
        assertEquals(0, r.code(), r.err());
        var report = new com.fasterxml.jackson.databind.ObjectMapper().readTree(r.out());
        assertEquals("drop", report.get("mode").asText());
        assertEquals(1, report.get("layers").get(0).asInt());
        assertEquals(128, report.get("kv_bytes_per_token_before").asLong());
        assertEquals(64, report.get("kv_bytes_per_token_after").asLong());
        assertTrue(report.get("params_removed").asLong() > 0);
        for (String f : new String[] {"genai_config.json", "tokenizer.json", "tokenizer_config.json", "model.onnx", "model.onnx.data"}) {
            assertTrue(Files.exists(out.resolve(f)), f);
        }
        Map<String, String> meta = RewriteMetadata.read(OnnxModelIO.load(out).proto());
        assertEquals("1", meta.get("layers"));
        assertEquals("0.5", meta.get("threshold"));
        assertEquals(Main.VERSION, meta.get("version"));
        assertTrue(Files.size(out.resolve("model.onnx.data")) < Files.size(dir.resolve("model.onnx.data")),
                "dead weights are gone from the data file");
    }

    @ParameterizedTest
    @CsvSource({"--drop-attn, 3, 3", "--freeze, 2, 3", "--random-kv, 2, 2", "--drop-attn, 4, -1"})
    void fromLayerAloneNamesTheFirstLayer(String mode, int k, int firstChanged) throws Exception {
        Path out = tmp.resolve("out");
        CliRun r = cli("optimize", "graphs/tiny-llama", "-o", out.toString(), mode, "--from-layer", String.valueOf(k), "--json");
        assertEquals(0, r.code(), r.err());
        var report = new com.fasterxml.jackson.databind.ObjectMapper().readTree(r.out());
        List<Integer> layers = new ArrayList<>();
        report.get("layers").forEach(n -> layers.add(n.asInt()));
        assertEquals(IntStream.range(k, 4).boxed().toList(), layers);
        assertEquals(firstChanged, report.get("first_changed_layer").asInt());
        assertTrue(report.get("threshold").isNull(), "no fraction was given");
        // attention FLOPs per generated token are drop's saving only; the other modes leave the fields out
        boolean drop = mode.equals("--drop-attn");
        assertEquals(drop, report.has("context_length"), r.out());
        assertEquals(drop, report.has("attention_flops_saved_per_token"), r.out());
        if (drop && k < 4) {
            assertTrue(report.get("attention_flops_saved_per_token").asLong() > 0, r.out());
        }
    }

    @ParameterizedTest
    @CsvSource({"--noise-seed", "--seed"})
    void noiseSeedKeepsItsOldSpellingHidden(String option) throws Exception {
        Path out = tmp.resolve("random.onnx");
        CliRun r = cli("optimize", "graphs/tiny-llama", "-o", out.toString(), "--random-kv-above", "0.5", option, "7",
                "--noise", "shuffle");
        assertEquals(0, r.code(), r.err());
        Map<String, String> meta = RewriteMetadata.read(OnnxModelIO.load(out).proto());
        assertEquals("7", meta.get("seed"));
        assertEquals("shuffle", meta.get("noise"));
        String help = cli("optimize", "--help").out();
        assertTrue(help.contains("--noise-seed"), help);
        assertFalse(help.contains("--seed"), "the old spelling is hidden: " + help);
    }

    @Test
    void fractionWithFromLayerOrModeWithoutItIsRefused() {
        Path out = tmp.resolve("out");
        for (String[] mode : new String[][] {{"--drop-attn-above", "0.5", "--from-layer", "1"},
                {"--freeze-above", "0.5", "--from-layer", "1"}, {"--random-kv-above", "0.5", "--from-layer", "1"},
                {"--drop-attn"}, {"--freeze"}, {"--drop-attn", "--freeze-above", "0.5", "--from-layer", "1"}}) {
            List<String> args = new ArrayList<>(List.of("optimize", "graphs/tiny-llama", "-o", out.toString()));
            args.addAll(List.of(mode));
            CliRun r = cli(args.toArray(String[]::new));
            assertEquals(2, r.code(), args + " -> " + r.err());
            assertEquals(1, r.err().strip().split("\n").length, r.err());
            assertFalse(Files.exists(out), "nothing written for " + args);
        }
        CliRun both = cli("optimize", "graphs/tiny-llama", "-o", out.toString(), "--drop-attn-above", "0.5", "--from-layer", "1");
        assertTrue(both.err().contains("--from-layer 1 replaces the fraction 0.5"), both.err());
    }

    @Test
    void badInputsExitTwoAndWriteNothing() {
        Path model = Fixtures.model("ortgenai-gpt2-fp32/past.onnx");
        Path out = tmp.resolve("out.onnx");
        for (String[] args : new String[][] {
                {"optimize", model.toString(), "-o", out.toString(), "--drop-attn-above", "1.5"},
                {"optimize", model.toString(), "-o", out.toString(), "--drop-attn-above", "0.5", "--from-layer", "9"},
                {"optimize", model.toString(), "-o", out.toString(), "--drop-attn-layers", "2,5"},
                {"optimize", model.toString(), "-o", out.toString(), "--freeze-above", "0.5"},
                {"optimize", model.toString(), "-o", model.toString(), "--drop-attn-above", "0.5"},
                {"optimize", model.toString(), "-o", out.toString()},
                {"optimize", model.toString(), "-o", out.toString(), "--random-kv-above", "0.5", "--noise", "angle:x"}}) {
            CliRun r = cli(args);
            assertEquals(2, r.code(), String.join(" ", args) + " -> " + r.err());
            assertEquals(1, r.err().strip().split("\n").length, r.err());
            assertFalse(r.err().contains("\tat "), r.err());
            assertFalse(Files.exists(out), "nothing written for " + String.join(" ", args));
        }
    }

    @Test
    void freezeKvFlavourIsRecordedAndAFusedAttentionOpIsRefusedWithTheReason() throws Exception {
        Path dir = Fixtures.model("ortgenai-llama-fp16");
        for (String flavour : new String[] {"paper", "single-input"}) {
            Path out = tmp.resolve("frozen-" + flavour);
            CliRun r = cli("optimize", dir.toString(), "-o", out.toString(), "--freeze", "--from-layer", "0", "--freeze-kv", flavour);
            assertEquals(0, r.code(), r.err());
            Map<String, String> meta = RewriteMetadata.read(OnnxModelIO.load(out).proto());
            assertEquals(flavour, meta.get("freeze_kv"));
            assertEquals("1", meta.get("first_changed_layer"));
        }
        Path out = tmp.resolve("out.onnx");
        Path fused = Fixtures.model("ortgenai-gpt2-fp32/past.onnx");
        for (String flavour : new String[] {"paper", "single-input"}) {
            CliRun r = cli("optimize", fused.toString(), "-o", out.toString(), "--freeze-above", "0.5", "--freeze-kv", flavour);
            assertEquals(2, r.code(), r.err());
            assertTrue(r.err().contains("projects Q, K and V inside the op"), r.err());
            assertEquals(1, r.err().strip().split("\n").length, r.err());
        }
        for (String[] args : new String[][] {
                {"optimize", "graphs/tiny-llama", "-o", out.toString(), "--freeze-above", "0.5", "--freeze-kv", "both"},
                {"optimize", "graphs/tiny-llama", "-o", out.toString(), "--drop-attn-above", "0.5", "--freeze-kv", "paper"}}) {
            CliRun r = cli(args);
            assertEquals(2, r.code(), String.join(" ", args) + " -> " + r.err());
            assertTrue(r.err().contains("--freeze-kv"), r.err());
            assertFalse(Files.exists(out), "nothing written for " + String.join(" ", args));
        }
    }
}
