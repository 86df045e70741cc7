package org.attnskip.cli;

import ai.onnx.proto.OnnxMl.TensorProto;
import org.attnskip.CliRun;
import org.attnskip.Fixtures;
import org.attnskip.StoriesExport;
import org.attnskip.export.Llama2cCheckpoint;
import org.attnskip.export.LlamaWeights;
import org.attnskip.onnx.LoadedModel;
import org.attnskip.onnx.OnnxModelIO;
import org.attnskip.onnx.Tensors;
import org.attnskip.reference.AffineMap;
import org.attnskip.reference.Manipulation;
import org.attnskip.reference.ReferenceLlama;
import org.attnskip.rewrite.RewriteMetadata;
import org.attnskip.runtime.DecoderSession;
import org.attnskip.runtime.Device;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** optimize --compensate linear: what it records and runs, and the inputs it refuses. */
class CompensateCommandTest {
    @TempDir
    Path tmp;

    @Test
    void calibratedModelRecordsItsCalibrationAndRunsAsTheReferenceWithItsMaps() throws Exception {
        Path bin = Fixtures.model("stories260K/stories260K.bin");
        Path dir = StoriesExport.export(tmp, "s260k");
        Path out = tmp.resolve("fast");
        Path text = Path.of("eval/stories.txt");
        CliRun r = CliRun.of("optimize", dir.toString(), "-o", out.toString(), "--drop-attn", "--from-layer", "3",
                "--compensate", "linear", "--calibration-text", text.toString(), "--calibration-tokens", "600", "--json", "--quiet");
        assertEquals(0, r.code(), r.err());

        LoadedModel loaded = OnnxModelIO.load(out);
        Map<String, String> meta = RewriteMetadata.read(loaded.proto());
        assertEquals("drop", meta.get("mode"));
        assertEquals("3,4", meta.get("layers"));
        assertEquals("linear", meta.get("compensate"));
        assertEquals(HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(text))),
                meta.get("calibration_sha256"));
        assertEquals("600", meta.get("calibration_tokens"));
        assertEquals("0.01", meta.get("ridge"));
        assertEquals("stream", meta.get("calibration_target"));
        // layers 3-4 are the top block of an exported directory: the maps were refined against the output
        assertEquals("output-kl, 3 epochs, lr 3.0E-4, batch 1024", meta.get("refine"));
        assertEquals(String.valueOf(2 * (64 * 64 + 64)), meta.get("params_added"));
        var report = new com.fasterxml.jackson.databind.ObjectMapper().readTree(r.out());
        assertTrue(report.get("notes").toString().contains("8,320 parameters added"), r.out());

        // the maps as stored in the graph, run by the reference, give the graph's logits
        Map<Integer, AffineMap> maps = new TreeMap<>();
        for (int layer : new int[] {3, 4}) {
            maps.put(layer, new AffineMap(64, weights(loaded, "attnskip.compensate." + layer + ".first"), null,
                    weights(loaded, "attnskip.compensate." + layer + ".bias")));
        }
        assertRunsAsTheReference(bin, out, maps, 3);
    }

    /**
     * The fused flavour with a kept layer after a calibrated one: there the map reads the
     * Skip*Norm's normalised output, not the stream, and the rewritten graph must still be read
     * back as a sequential decoder (by optimize's own report, by inspect, by the runtime).
     */
    @Test
    void calibratedDropOfNonContiguousLayersOnAFusedGraphIsReadBackAndRunsAsTheReference() throws Exception {
        Path bin = Fixtures.model("stories260K/stories260K.bin");
        Path dir = StoriesExport.export(tmp, "s260k-fused", "--graph", "fused");
        Path out = tmp.resolve("fused-c13");
        CliRun r = CliRun.of("optimize", dir.toString(), "-o", out.toString(), "--drop-attn-layers", "1,3",
                "--compensate", "linear", "--calibration-text", "eval/stories.txt", "--calibration-tokens", "600", "--quiet");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("KV bytes     1,280 -> 768 per token"), r.out());
        assertTrue(RewriteMetadata.read(OnnxModelIO.load(out).proto()).get("refine").startsWith("none ("), "layers 1 and 3 are not the top block");

        CliRun inspect = CliRun.of("inspect", out.toString());
        assertEquals(0, inspect.code(), inspect.err());
        assertTrue(inspect.out().contains("layers      3"), inspect.out());
        assertTrue(inspect.out().contains("past_key_values.2.key"), inspect.out());
        assertFalse(inspect.out().contains("past_key_values.1.key"), inspect.out());

        LoadedModel loaded = OnnxModelIO.load(out);
        Map<Integer, AffineMap> maps = new TreeMap<>();
        for (int layer : new int[] {1, 3}) {
            maps.put(layer, new AffineMap(64, weights(loaded, "attnskip.compensate." + layer + ".first"), null,
                    weights(loaded, "attnskip.compensate." + layer + ".bias")));
        }
        assertRunsAsTheReference(bin, out, maps, 3);
    }

    /** The graph's logits at every position of a prompt equal the reference's with the same maps. */
    private static void assertRunsAsTheReference(Path bin, Path out, Map<Integer, AffineMap> maps, int cachedLayers)
            throws Exception {
        LlamaWeights w = Llama2cCheckpoint.read(bin);
        int[] tokens = {1, 403, 407, 261, 378, 365, 9, 290, 435, 11, 60, 275};
        float[][] expected = new ReferenceLlama(w).logitsAllPositions(tokens, new Manipulation.CompensatedDrop(maps));
        try (DecoderSession s = DecoderSession.open(OnnxModelIO.resolveModelFile(out), Device.CPU)) {
            long[] ids = new long[tokens.length];
            long[] mask = new long[tokens.length];
            long[] positions = new long[tokens.length];
            for (int t = 0; t < tokens.length; t++) {
                ids[t] = tokens[t];
                mask[t] = 1;
                positions[t] = t;
            }
            var o = s.run(new long[][] {ids}, new long[][] {mask}, new long[][] {positions}, s.emptyCache(1));
            o.cache().close();
            assertEquals(cachedLayers, s.cachedLayers().size(), "dropped layers " + maps.keySet() + " keep no cache");
            for (int t = 0; t < tokens.length; t++) {
                float[] actual = o.logits().at(0, t);
                for (int v = 0; v < actual.length; v++) {
                    assertEquals(expected[t][v], actual[v], 1e-4, "position " + t + " logit " + v);
                }
            }
        }
    }

    /**
     * sweep --compensate linear: the same threshold swept plainly and calibrated on other stories;
     * on stories-deep12 with the top 3 layers dropped the maps bring the KL to the baseline down.
     */
    @Test
    void sweepWithCompensationRecordsItAndLowersTheKlOfPlainDrop() throws Exception {
        Path dir = tmp.resolve("deep12");
        CliRun export = CliRun.of("export", "--llama2c", Fixtures.model("stories-deep12/stories-deep12.bin").toString(),
                "--tokenizer", Fixtures.model("stories-deep12/tok512.bin").toString(), "-o", dir.toString());
        assertEquals(0, export.code(), export.err());
        Path calibration = tmp.resolve("calibration.jsonl");
        Files.write(calibration, Files.readAllLines(Fixtures.require("data/stories260K-samples.jsonl")).subList(0, 40));
        List<String> common = List.of("sweep", dir.toString(), "--mode", "drop", "--thresholds", "0.75", "--text", "eval/stories.txt",
                "--max-docs", "6", "--max-tokens", "128", "--no-latency", "--bootstrap", "50", "--quiet");
        double[] kl = new double[2];
        for (int compensated = 0; compensated < 2; compensated++) {
            Path report = tmp.resolve("sweep" + compensated);
            List<String> args = new ArrayList<>(common);
            args.addAll(List.of("--report", report.toString()));
            if (compensated == 1) {
                args.addAll(List.of("--compensate", "linear", "--calibration-text", calibration.toString(), "--calibration-tokens", "3000"));
            }
            CliRun r = CliRun.of(args.toArray(String[]::new));
            assertEquals(0, r.code(), r.err());
            var json = new com.fasterxml.jackson.databind.ObjectMapper().readTree(report.resolve("report.json").toFile());
            assertEquals(compensated == 1 ? "linear" : null, json.get("config").has("compensate")
                    ? json.get("config").get("compensate").asText() : null);
            assertEquals("[9,10,11]", json.get("points").get(0).get("layers").toString());
            kl[compensated] = json.get("points").get(0).get("text").get("mean_kl").get("value").asDouble();
        }
        System.out.printf("sweep 0.75 on stories-deep12: mean KL plain %.4f, calibrated %.4f%n", kl[0], kl[1]);
        assertTrue(kl[1] < 0.8 * kl[0], "calibrated KL " + kl[1] + " vs plain " + kl[0]);
        // the calibrated sweep also swept plain drop and freeze for its one chart: the plain one is the sweep above
        var mapper = new com.fasterxml.jackson.databind.ObjectMapper();
        var plain = mapper.readTree(tmp.resolve("sweep1/plain-drop/report.json").toFile()).get("points").get(0);
        assertEquals(kl[0], plain.get("text").get("mean_kl").get("value").asDouble(), 1e-9);
        var freeze = mapper.readTree(tmp.resolve("sweep1/freeze/report.json").toFile());
        assertEquals("freeze", freeze.get("mode").asText().toLowerCase(java.util.Locale.ROOT));
        assertEquals("[9,10,11]", freeze.get("points").get(0).get("layers").toString());
        assertTrue(Files.size(tmp.resolve("sweep1/sweep-modes-kl.png")) > 0);
        assertTrue(Files.readString(tmp.resolve("sweep1/report.md")).contains("sweep-modes-kl.png"));
    }

    private static float[] weights(LoadedModel model, String name) {
        TensorProto t = model.proto().getGraph().getInitializerList().stream().filter(i -> i.getName().equals(name))
                .findFirst().orElseThrow(() -> new AssertionError("no initializer " + name));
        return Tensors.floats(t, model.baseDir());
    }

    @Test
    void badCalibrationInputsExitTwoWithOneLineAndWriteNothing() {
        Path out = tmp.resolve("out");
        String model = "graphs/tiny-llama";
        List<String[]> cases = List.of(
                new String[] {"--drop-attn-above", "0.5", "--compensate", "linear"},
                new String[] {"--drop-attn-above", "0.5", "--compensate", "linear", "--calibration-text", "no-such.jsonl"},
                new String[] {"--drop-attn-above", "0.5", "--compensate", "cubic", "--calibration-text", "eval/stories.txt"},
                new String[] {"--freeze-above", "0.5", "--compensate", "linear", "--calibration-text", "eval/stories.txt"},
                new String[] {"--drop-attn-above", "0.5", "--ridge", "0.1"},
                new String[] {"--drop-attn-above", "0.5", "--compensate", "linear", "--calibration-text", "eval/stories.txt",
                        "--calibration-target", "logits"},
                new String[] {"--drop-attn-above", "0.5", "--compensate", "linear", "--calibration-text", "eval/stories.txt", "--ridge", "-1"},
                new String[] {"--drop-attn-above", "0.5", "--compensate", "linear", "--calibration-text", "eval/stories.txt", "--rank", "0"},
                new String[] {"--drop-attn-above", "0.5", "--compensate", "linear", "--calibration-text", "eval/stories.txt", "--rank", "64"},
                new String[] {"--drop-attn-above", "0.5", "--compensate", "linear", "--calibration-text", "eval/stories.txt",
                        "--calibration-tokens", "1"},
                // the tiny graph ships no tokenizer to read the calibration text with
                new String[] {"--drop-attn-above", "0.5", "--compensate", "linear", "--calibration-text", "eval/stories.txt"});
        for (String[] extra : cases) {
            List<String> args = new ArrayList<>(List.of("optimize", model, "-o", out.toString()));
            args.addAll(List.of(extra));
            CliRun r = CliRun.of(args.toArray(String[]::new));
            assertEquals(2, r.code(), args + " -> " + r.err());
            assertEquals(1, r.err().strip().split("\n").length, r.err());
            assertFalse(r.err().contains("\tat "), r.err());
            assertFalse(Files.exists(out), "nothing written for " + args);
        }
    }
}
