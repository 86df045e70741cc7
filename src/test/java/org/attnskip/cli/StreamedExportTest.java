package org.attnskip.cli;

import ai.onnx.proto.OnnxMl.TensorProto;
import org.attnskip.ChildJvm;
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
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
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

    /**
     * A sharded bf16 checkpoint whose weights take 292 MB in fp32 exports in a JVM with a 224 MB
     * heap, so no path holds the model (or a layer's worth of fp32 values per tensor beyond the
     * budget) in the heap; the logits match the reference on the same checkpoint read into memory.
     */
    @Test
    void shardedBf16CheckpointLargerThanTheHeapExportsInBoundedMemory() throws Exception {
        int dim = 512;
        int kvDim = 128;
        int ffn = 1408;
        int vocab = 16000;
        int layers = 20;
        Path hf = tmp.resolve("hf-large");
        Map<String, Object> config = TinyHfCheckpoint.llamaConfig();
        config.put("hidden_size", dim);
        config.put("intermediate_size", ffn);
        config.put("num_hidden_layers", layers);
        config.put("num_attention_heads", 8);
        config.put("num_key_value_heads", 2);
        config.put("vocab_size", vocab);
        TinyHfCheckpoint.writeConfig(hf, config);
        SplittableRandom random = new SplittableRandom(11);
        Map<String, TinyHfCheckpoint.HfTensor> tensors = new LinkedHashMap<>();
        long values = 0;
        values += put(tensors, random, "model.embed_tokens.weight", 1, vocab, dim);
        for (int i = 0; i < layers; i++) {
            String p = "model.layers." + i + ".";
            values += put(tensors, random, p + "input_layernorm.weight", 1, dim);
            values += put(tensors, random, p + "self_attn.q_proj.weight", dim, dim, dim);
            values += put(tensors, random, p + "self_attn.k_proj.weight", dim, kvDim, dim);
            values += put(tensors, random, p + "self_attn.v_proj.weight", dim, kvDim, dim);
            values += put(tensors, random, p + "self_attn.o_proj.weight", dim, dim, dim);
            values += put(tensors, random, p + "post_attention_layernorm.weight", 1, dim);
            values += put(tensors, random, p + "mlp.gate_proj.weight", dim, ffn, dim);
            values += put(tensors, random, p + "mlp.up_proj.weight", dim, ffn, dim);
            values += put(tensors, random, p + "mlp.down_proj.weight", ffn, dim, ffn);
        }
        values += put(tensors, random, "model.norm.weight", 1, dim);
        values += put(tensors, random, "lm_head.weight", dim, vocab, dim);
        TinyHfCheckpoint.writeSharded(hf, tensors, Safetensors.DType.BF16, 4);
        tensors.clear();
        TinyHfCheckpoint.writeTokenizer(hf);
        long heap = 224L << 20;
        assertTrue(4 * values > heap, "the fp32 weights (" + 4 * values + " bytes) are more than the heap");

        Path dir = tmp.resolve("exported-large");
        List<String> cmd = new ArrayList<>(ChildJvm.command(tmp, "export", "--hf", hf.toString(), "-o", dir.toString(),
                "--external-data"));
        cmd.add(1, "-Xmx" + (heap >> 20) + "m");
        Process child = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(tmp.resolve("child.log").toFile())
                .start();
        assertTrue(child.waitFor(5, TimeUnit.MINUTES), "export finished");
        assertEquals(0, child.exitValue(), Files.readString(tmp.resolve("child.log")));

        LlamaWeights weights = HfCheckpoint.read(hf);
        int[] tokens = new Random(3).ints(8, 0, TinyHfCheckpoint.VOCAB).toArray();
        ReferenceMatch.assertLogitsMatch(ModelDirectory.read(dir).modelFile(), weights, tokens, 1e-4);
    }

    /** Uniform values of standard deviation 1/sqrt(fanIn) (1 for the embedding); returns the count. */
    private static long put(Map<String, TinyHfCheckpoint.HfTensor> tensors, SplittableRandom random, String name,
                            int fanIn, long... shape) {
        long n = 1;
        for (long d : shape) {
            n *= d;
        }
        float[] v = new float[(int) n];
        double r = Math.sqrt(3.0 / fanIn);
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) ((random.nextDouble() * 2 - 1) * r);
        }
        tensors.put(name, new TinyHfCheckpoint.HfTensor(v, shape));
        return n;
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
    void anExportNeedingMoreHeapThanTheJvmHasIsExitTwoAndWritesNothing() throws Exception {
        // a row block of the 16384-wide tensors, the 32 MB band of the transposed classifier and the
        // slack are about 176 MB: more than the child's 64 MB (the classifier itself is 7.9 GB, but it streams)
        Path scratch = Files.createDirectories(tmp.resolve("scratch"));
        Path out = tmp.resolve("wide");
        List<String> cmd = new ArrayList<>(ChildJvm.command(scratch, "export", "--synthetic",
                "layers=1,hidden=16384,heads=128,ffn=64,vocab=120000", "-o", out.toString(), "--external-data"));
        cmd.add(1, "-Xmx64m");
        Path log = scratch.resolve("child.log");
        Process child = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile()).start();
        assertTrue(child.waitFor(2, TimeUnit.MINUTES), "export finished");
        String err = Files.readString(log);
        assertEquals(2, child.exitValue(), err);
        assertEquals(1, err.strip().split("\n").length, err);
        assertTrue(err.startsWith("attnskip: ") && err.contains("of Java heap"), err);
        try (Stream<Path> left = Files.list(tmp)) {
            assertEquals(List.of(scratch), left.toList(), "nothing written, not even a hidden staging directory");
        }
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
