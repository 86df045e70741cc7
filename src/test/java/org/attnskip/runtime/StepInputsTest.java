package org.attnskip.runtime;

import static org.attnskip.TestTokens.longs;
import static org.attnskip.TestTokens.ones;
import static org.attnskip.TestTokens.range;
import org.attnskip.export.ExportDtype;
import org.attnskip.export.FusedLlamaExporter;
import org.attnskip.export.TestLlamaWeights;
import org.attnskip.layout.ThirdPartyGraphs;
import org.attnskip.onnx.OnnxModelIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A decode step through {@link DecoderSession#append} feeds the sequence's kept ids and positions
 * tensors and its kept capacity-wide mask ({@link StepInputs}); the same tokens through
 * {@link DecoderSession#run} with explicit ids, mask and positions feed fresh tensors. Both give the
 * same logits bit for bit at every step, also across the cache reallocations that a small capacity
 * forces (which close the kept tensors and make them again).
 */
class StepInputsTest {
    private static final int[] PROMPT = {1, 17, 42, 5, 9};
    private static final int[] NEXT = {31, 7, 60, 2, 44, 13, 8, 50, 3, 21, 36, 11};

    @TempDir
    Path tmp;

    @Test
    void fusedExport() {
        Path file = tmp.resolve("fused.onnx");
        OnnxModelIO.save(FusedLlamaExporter.export(TestLlamaWeights.random(
                TestLlamaWeights.config(64, 96, 2, 4, 2, 97, 64, false, false), 5), ExportDtype.FLOAT), null, file, false);
        check(file);
    }

    /**
     * GroupQueryAttention with its own rotary refuses a mask wider than its tables' positions: a
     * cache of more capacity than the model's 16 positions takes a step mask of 16.
     */
    @Test
    void fixedWidthMaskStaysWithinTheRotaryTables() {
        Path file = tmp.resolve("short.onnx");
        OnnxModelIO.save(FusedLlamaExporter.export(TestLlamaWeights.random(
                TestLlamaWeights.config(64, 96, 2, 4, 2, 97, 16, false, false), 5), ExportDtype.FLOAT), null, file, false);
        try (DecoderSession s = DecoderSession.open(file, Device.CPU)) {
            int n = PROMPT.length;
            DecoderSession.Output appended = s.append(PROMPT, s.emptyCache(1, 40));
            DecoderSession.Output explicit = s.run(new long[][] {longs(PROMPT)}, new long[][] {ones(n)},
                    new long[][] {range(n)}, s.emptyCache(1, 40));
            for (int i = 0; i < 16 - n; i++) {
                int token = NEXT[i % NEXT.length];
                appended = s.append(new int[] {token}, appended.cache());
                explicit = s.run(new long[][] {{token}}, new long[][] {ones(n + i + 1)}, new long[][] {{n + i}},
                        explicit.cache());
                assertArrayEquals(explicit.logits().last(0), appended.logits().last(0), "step " + i);
                assertEquals(16, appended.cache().scratch().stepInputs().keptMaskWidth());
            }
            appended.cache().close();
            explicit.cache().close();
        }
    }

    @Test
    void thirdPartyGraphWithPositionIds() {
        check(ThirdPartyGraphs.write(ThirdPartyGraphs.Dialect.GQA_SEPARATE, 2, 3, tmp.resolve("separate.onnx")));
    }

    @Test
    void thirdPartyGraphWithoutPositionIds() {
        check(ThirdPartyGraphs.write(ThirdPartyGraphs.Dialect.GQA_PACKED, 2, 4, tmp.resolve("packed.onnx")));
    }

    private static void check(Path model) {
        try (DecoderSession s = DecoderSession.open(model, Device.CPU)) {
            assertTrue(s.updatesCacheInPlace(), "the kept step inputs belong to in-place caches");
            int n = PROMPT.length;
            // capacity n + 2: the third step reallocates the cache, and again later
            DecoderSession.Output appended = s.append(PROMPT, s.emptyCache(1, n + 2));
            DecoderSession.Output explicit = s.run(new long[][] {longs(PROMPT)}, new long[][] {ones(n)},
                    new long[][] {range(n)}, s.emptyCache(1, n + 2));
            assertArrayEquals(explicit.logits().last(0), appended.logits().last(0));
            boolean moved = false;
            for (int i = 0; i < NEXT.length; i++) {
                int past = n + i;
                float[] before = appended.logits().last(0);
                appended = s.append(new int[] {NEXT[i]}, appended.cache());
                explicit = s.run(new long[][] {{NEXT[i]}}, new long[][] {ones(past + 1)}, new long[][] {{past}},
                        explicit.cache());
                assertArrayEquals(explicit.logits().last(0), appended.logits().last(0), "step " + i);
                assertEquals(past + 1, appended.cache().length());
                // the step's mask is as wide as the cache, the same shape from step to step
                assertEquals(appended.cache().capacity(), appended.cache().scratch().stepInputs().keptMaskWidth(), "step " + i);
                moved |= !java.util.Arrays.equals(before, appended.logits().last(0));
            }
            assertTrue(moved, "the steps' logits differ from one another: the comparison is not trivial");
            appended.cache().close();
            explicit.cache().close();
        }
    }
}
