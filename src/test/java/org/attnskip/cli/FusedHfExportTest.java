package org.attnskip.cli;

import org.attnskip.CliRun;
import org.attnskip.export.HfCheckpoint;
import org.attnskip.export.LlamaWeights;
import org.attnskip.export.ModelDirectory;
import org.attnskip.export.ReferenceMatch;
import org.attnskip.export.TinyHfCheckpoint;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * export --hf --graph fused: Hugging Face's rotate-halves convention (permuted to adjacent pairs by
 * the reader), q/k/v biases and Llama 3 rope scaling reach GroupQueryAttention's packed projection
 * and rotary tables, and the logits equal the reference, prefilled and decoded with the in-place cache.
 */
class FusedHfExportTest {
    @TempDir
    Path tmp;

    @ParameterizedTest(name = "{0}")
    @EnumSource(value = ExportHfCliTest.Variant.class, names = {"SINGLE_FP32_LLAMA", "QWEN2_QKV_BIASES", "LLAMA3_ROPE_SCALING"})
    void fusedExportMatchesTheReference(ExportHfCliTest.Variant variant) throws IOException {
        Path hf = variant.write(tmp.resolve("hf"));
        Path dir = tmp.resolve("fused");
        CliRun export = CliRun.of("export", "--hf", hf.toString(), "-o", dir.toString(), "--graph", "fused");
        assertEquals(0, export.code(), export.err());

        LlamaWeights weights = HfCheckpoint.read(hf);
        int[] tokens = new Random(11).ints(24, 0, TinyHfCheckpoint.VOCAB).toArray();
        double delta = ReferenceMatch.assertLogitsMatch(ModelDirectory.read(dir).modelFile(), weights, tokens, 1e-4);
        System.out.printf("export --hf %s --graph fused, %d tokens: max |logit delta| ORT vs ReferenceLlama %.2e%n",
                variant, tokens.length, delta);
    }
}
