package org.attnskip.hostile;

import ai.onnx.proto.OnnxMl.GraphProto;
import ai.onnx.proto.OnnxMl.ModelProto;
import org.attnskip.CliRun;
import org.attnskip.export.HfCheckpoint;
import org.attnskip.onnx.BadInputException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.TreeMap;

import static org.attnskip.hostile.HostileFiles.assertRefused;
import static org.attnskip.hostile.HostileFiles.snapshot;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Each crash the mutation campaign found, as the smallest input that showed it. */
class CampaignFindingsTest {
    private static final Path SEEDS = Path.of("src/test/resources/seeds");

    @TempDir
    Path tmp;

    /** Campaign seed 11, inspect case 0-554: a one-input node retyped as Mul crashed discovery (IndexOutOfBounds). */
    @Test
    void aNodeWithFewerInputsThanItsOperatorTakesIsRefused() throws IOException {
        ModelProto seed = ModelProto.parseFrom(Files.readAllBytes(SEEDS.resolve("onnx/model.onnx")));
        GraphProto.Builder g = seed.getGraph().toBuilder();
        int victim = -1;
        for (int i = 0; i < g.getNodeCount() && victim < 0; i++) {
            if (g.getNode(i).getInputCount() == 1 && g.getNode(i).getOpType().equals("Shape")) {
                victim = i;
            }
        }
        g.setNode(victim, g.getNode(victim).toBuilder().setOpType("Mul"));
        Path model = tmp.resolve("model.onnx");
        Files.write(model, seed.toBuilder().setGraph(g).build().toByteArray());
        TreeMap<String, String> before = snapshot(tmp);
        assertRefused(CliRun.of("inspect", model.toString()), "(Mul) has 1 inputs", "Mul needs at least 2");
        assertRefused(CliRun.of("optimize", model.toString(), "-o", tmp.resolve("out.onnx").toString(),
                "--drop-attn-above", "0.5"), "Mul needs at least 2");
        assertEquals(before, snapshot(tmp));
    }

    /** Bounded pass, seed 1: Jackson's parse errors carry the location on a second line, which broke "one line". */
    @Test
    void aBrokenConfigJsonIsReportedOnOneLine() throws IOException {
        Path hf = tmp.resolve("hf");
        HostileFiles.copyTree(SEEDS.resolve("hf"), hf);
        Files.writeString(hf.resolve("config.json"), "{\"hidden_size\" 16}");
        assertRefused(CliRun.of("export", "--hf", hf.toString(), "-o", tmp.resolve("out").toString()),
                "cannot read", "config.json");
        Files.writeString(hf.resolve("config.json"), Files.readString(SEEDS.resolve("hf/config.json")));
        Files.writeString(hf.resolve("tokenizer.json"), "{\"model\": :}");
        assertRefused(CliRun.of("export", "--hf", hf.toString(), "-o", tmp.resolve("out").toString()),
                "tokenizer.json");
    }

    /** Campaign seed 11, export --hf case 10-557: max_position_embeddings 2^31-1 overflowed the rotary tables' size. */
    @Test
    void aContextLengthBeyondAnyTableIsRefused() throws IOException {
        Path hf = tmp.resolve("hf");
        HostileFiles.copyTree(SEEDS.resolve("hf"), hf);
        Path config = hf.resolve("config.json");
        Files.writeString(config, Files.readString(config).replace("\"max_position_embeddings\":64",
                "\"max_position_embeddings\":2147483647"));
        TreeMap<String, String> before = snapshot(tmp);
        assertRefused(CliRun.of("export", "--hf", hf.toString(), "-o", tmp.resolve("out").toString()),
                "rotary tables for 2147483647 positions");
        assertEquals(before, snapshot(tmp));
    }

    /**
     * ReaderFuzzTest.huggingFaceFolder, 20,000-try run, sample (-1594, sharded): num_hidden_layers
     * 2^31-1 made the in-memory loader allocate an array of that many layers (OutOfMemoryError).
     */
    @Test
    void aLayerCountTheCheckpointLacksIsRefusedNotAllocated() throws IOException {
        Path hf = tmp.resolve("hf");
        HostileFiles.copyTree(SEEDS.resolve("hf-sharded"), hf);
        Path config = hf.resolve("config.json");
        String text = Files.readString(config);
        assertTrue(text.contains("\"num_hidden_layers\":2"), "the seed has two layers");
        Files.writeString(config, text.replace("\"num_hidden_layers\":2", "\"num_hidden_layers\":2147483647"));
        BadInputException e = assertThrows(BadInputException.class, () -> HfCheckpoint.read(hf));
        assertTrue(e.getMessage().contains("model.layers.2."), e.getMessage());
    }
}
