package org.attnskip.cli;

import ai.onnx.proto.OnnxMl.TensorProto;
import org.attnskip.CliRun;
import org.attnskip.Fixtures;
import org.attnskip.export.ExportDtype;
import org.attnskip.export.HfCheckpoint;
import org.attnskip.export.Llama2cCheckpoint;
import org.attnskip.export.LlamaOnnxExporter;
import org.attnskip.export.LlamaWeights;
import org.attnskip.export.ModelDirectory;
import org.attnskip.export.ModelManifest;
import org.attnskip.export.ReferenceMatch;
import org.attnskip.export.Safetensors;
import org.attnskip.export.TinyHfCheckpoint;
import org.attnskip.onnx.ExternalData;
import org.attnskip.onnx.OnnxModelIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * export with its weights streamed to model.onnx.data tensor by tensor (--external-data, automatic
 * above 1.5 GB): the same bytes as building the whole model in memory, the same logits as the
 * reference, and requests that cannot fit refused before anything is written.
 */
class StreamedExportTest {
    @TempDir
    Path tmp;

    @Test
    void streamedLlama2cExportIsByteForByteTheInMemoryExport() throws IOException {
        Path folder = Fixtures.model("stories260K");
        Path bin = folder.resolve("stories260K.bin");
        Path tok = folder.resolve("tok512.bin");
        Path streamed = tmp.resolve("streamed");
        CliRun run = CliRun.of("export", "--llama2c", bin.toString(), "--tokenizer", tok.toString(),
                "-o", streamed.toString(), "--external-data");
        assertEquals(0, run.code(), run.err());
        assertTrue(run.err().contains("export: model.layers.4.mlp.down_proj.weight"), "progress per tensor: " + run.err());
        assertTrue(run.err().contains("MB/s"), "progress shows the rate: " + run.err());

        // the earlier way: every weight in memory, one ModelProto, then saved with external data
        LlamaWeights weights = Llama2cCheckpoint.read(bin);
        ModelManifest manifest = ModelDirectory.read(streamed).manifest();
        Path inMemory = tmp.resolve("in-memory");
        ModelDirectory.write(inMemory, LlamaOnnxExporter.export(weights, ExportDtype.FLOAT), manifest, tok, true);
        for (String file : List.of("model.onnx", "model.onnx.data")) {
            assertArrayEquals(Files.readAllBytes(inMemory.resolve(file)), Files.readAllBytes(streamed.resolve(file)), file);
        }
        assertTrue(Files.size(streamed.resolve("model.onnx.data")) > 900_000, "the weights are in the data file");

        int[] tokens = new Random(5).ints(16, 0, weights.config.vocabSize()).toArray();
        ReferenceMatch.assertLogitsMatch(streamed.resolve("model.onnx"), weights, tokens, 1e-4);
    }

    @Test
    void shardedBf16CheckpointStreamsAndMatchesTheReference() throws IOException {
        Path hf = tmp.resolve("hf");
        Map<String, TinyHfCheckpoint.HfTensor> tensors = TinyHfCheckpoint.tensors(false, true, 17);
        TinyHfCheckpoint.writeConfig(hf, TinyHfCheckpoint.llamaConfig());
        TinyHfCheckpoint.writeSharded(hf, tensors, Safetensors.DType.BF16, 3);
        TinyHfCheckpoint.writeTokenizer(hf);
        Path dir = tmp.resolve("exported");
        CliRun run = CliRun.of("export", "--hf", hf.toString(), "-o", dir.toString(), "--external-data");
        assertEquals(0, run.code(), run.err());

        int external = 0;
        for (TensorProto t : OnnxModelIO.load(dir).proto().getGraph().getInitializerList()) {
            if (ExternalData.isExternal(t)) {
                external++;
            } else {
                assertTrue(t.getRawData().size() < OnnxModelIO.EXTERNAL_TENSOR_MIN_BYTES, t.getName() + " stayed inline");
            }
        }
        assertTrue(external >= 3, "embedding, lm_head and the q/o projections are in the data file");

        LlamaWeights weights = HfCheckpoint.read(hf);
        float[] embedding = tensors.get("model.embed_tokens.weight").values();
        for (int i = 0; i < embedding.length; i++) {
            // bf16 is the top 16 bits of the fp32 (the writer rounds to nearest even)
            float widened = weights.tokenEmbedding[i];
            assertEquals(0, Float.floatToRawIntBits(widened) & 0xffff, "bf16 value " + i);
            assertEquals(embedding[i], widened, Math.abs(embedding[i]) / 128, "value " + i);
        }
        int[] tokens = new Random(9).ints(20, 0, TinyHfCheckpoint.VOCAB).toArray();
        ReferenceMatch.assertLogitsMatch(ModelDirectory.read(dir).modelFile(), weights, tokens, 1e-4);
    }

    @Test
    void notEnoughDiskIsExitTwoWithTheBytesNeededAndWritesNothing() throws IOException {
        // a million layers of 16.8 M parameters: 67 TB, while one layer fits any test heap
        CliRun run = CliRun.of("export", "--synthetic", "layers=1000000,hidden=1024,heads=8,ffn=4096,vocab=1000",
                "-o", tmp.resolve("huge").toString());
        assertOneLineRefusal(run, "not enough disk space");
        assertTrue(run.err().matches("(?s).*needs \\d{14,} bytes.*"), run.err());
    }

    @Test
    void aLayerLargerThanTheHeapIsExitTwoAndWritesNothing() throws IOException {
        // one layer of 1.7 G parameters, its largest matrix 1.9 GB: about 10.5 GB of heap in fp32
        assumeTrue(Runtime.getRuntime().maxMemory() < 10L << 30, "this JVM's heap could take the layer");
        CliRun run = CliRun.of("export", "--synthetic", "layers=1,hidden=8192,heads=64,ffn=57344,vocab=1000",
                "-o", tmp.resolve("wide").toString(), "--external-data");
        assertOneLineRefusal(run, "of Java heap");
    }

    @Test
    void aTensorOverTwoGigabytesIsExitTwoAndWritesNothing() throws IOException {
        // a 16384 x 65536 fp32 matrix is 4 GB: one tensor's bytes live in one Java array
        CliRun run = CliRun.of("export", "--synthetic", "layers=1,hidden=16384,heads=128,ffn=65536,vocab=1000",
                "-o", tmp.resolve("wide").toString(), "--external-data");
        assertOneLineRefusal(run, "--dtype fp16");
    }

    private void assertOneLineRefusal(CliRun run, String mustSay) throws IOException {
        assertEquals(2, run.code(), run.err());
        assertEquals(1, run.err().strip().split("\n").length, run.err());
        assertTrue(run.err().startsWith("attnskip: ") && run.err().contains(mustSay), run.err());
        try (Stream<Path> left = Files.list(tmp)) {
            assertEquals(List.of(), left.toList(), "nothing written, not even a hidden staging directory");
        }
    }
}
