package org.attnskip.runtime;

import org.attnskip.export.ExportDtype;
import org.attnskip.export.FusedLlamaExporter;
import org.attnskip.export.LlamaOnnxExporter;
import org.attnskip.export.LlamaWeights;
import org.attnskip.export.StaticCacheLlamaExporter;
import org.attnskip.export.TestLlamaWeights;
import org.attnskip.layout.ThirdPartyGraphs;
import org.attnskip.onnx.OnnxModelIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.attnskip.Deltas.maxAbsDelta;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Sequences that join and leave a shared decode at different times, with different lengths, get
 * the logits they get when decoded alone.
 */
class KvBatchTest {
    private static final LlamaWeights WEIGHTS =
            TestLlamaWeights.random(TestLlamaWeights.config(32, 64, 3, 4, 2, 50, 64, true, false), 23);
    private static final int[][] PROMPTS = {{5, 9, 13, 2, 7, 30, 41, 8, 3, 17}, {22, 4}, {1, 44, 6, 12, 19}};
    private static final int[][] CONTINUATIONS = {{11, 12, 13, 14, 15, 16}, {40, 3, 9, 2, 8, 31}, {7, 7, 21, 5, 1, 2}};
    // Step at which each sequence joins and after how many of its own steps it leaves.
    private static final int[] JOIN_AT = {0, 2, 3};
    private static final int[] STEPS = {4, 6, 5};

    @TempDir
    Path tmp;

    // Heads of 16: GroupQueryAttention rotates q and k itself and the graph takes no position_ids.
    private static final LlamaWeights WIDE_HEADS =
            TestLlamaWeights.random(TestLlamaWeights.config(64, 96, 2, 4, 2, 50, 64, true, false), 29);

    @Test
    void fp32RowsMatchDecodingAlone() {
        assertTrue(worstDelta(export(LlamaOnnxExporter.export(WEIGHTS, ExportDtype.FLOAT), "fp32"),
                KvBatch.Padding.LEFT) <= 1e-4);
    }

    @Test
    void fp16RowsMatchDecodingAlone() {
        assertTrue(worstDelta(export(LlamaOnnxExporter.export(WEIGHTS, ExportDtype.FLOAT16), "fp16"),
                KvBatch.Padding.LEFT) <= 2e-2);
    }

    /** GroupQueryAttention (export --graph fused) rows share runs padded on the right, by their seqlens_k. */
    @Test
    void groupQueryAttentionRowsMatchDecodingAloneWithRightPadding() {
        Path rotaryNodes = export(FusedLlamaExporter.export(WEIGHTS, ExportDtype.FLOAT), "fused-rotary-nodes");
        assertTrue(worstDelta(rotaryNodes, KvBatch.Padding.RIGHT) <= 1e-4);
        Path rotaryInside = export(FusedLlamaExporter.export(WIDE_HEADS, ExportDtype.FLOAT), "fused-rotary-inside");
        assertTrue(worstDelta(rotaryInside, KvBatch.Padding.RIGHT) <= 1e-4);
        assertTrue(worstDelta(export(FusedLlamaExporter.export(WEIGHTS, ExportDtype.FLOAT16), "fused-fp16"),
                KvBatch.Padding.RIGHT) <= 2e-2);
    }

    /**
     * Static-cache rows (opset 24) share runs padded on the right: each row writes its new K/V at its
     * own write_indices into the shared fixed buffers and its attention reads its own nonpad_kv_seqlen.
     */
    @Test
    void staticCacheRowsMatchDecodingAloneWithRightPadding() {
        assertTrue(worstDelta(export(StaticCacheLlamaExporter.export(WEIGHTS, ExportDtype.FLOAT), "static"),
                KvBatch.Padding.RIGHT) <= 1e-4);
        assertTrue(worstDelta(export(StaticCacheLlamaExporter.export(WEIGHTS, ExportDtype.FLOAT16), "static-fp16"),
                KvBatch.Padding.RIGHT) <= 2e-2);
    }

    /**
     * The start-up check passes a static-cache graph padded on the right, and refuses left padding:
     * that lays the rows in a growing cache only as wide as the longest row, with no room at the
     * write_indices of the new position, so the shared run fails (and the server decodes alone).
     */
    @Test
    void theSelfCheckPassesAStaticCacheGraphOnlyWithRightPadding() {
        Path file = export(StaticCacheLlamaExporter.export(WEIGHTS, ExportDtype.FLOAT), "static-check");
        try (DecoderSession s = DecoderSession.open(file, Device.CPU)) {
            assertTrue(s.acceptsBatches());
            assertEquals(KvBatch.Padding.RIGHT, s.batchPadding());
            double right = KvBatch.disagreementWithDecodingAlone(s);
            System.out.printf("KvBatch self-check on the static-cache graph, right padding: %.2e%n", right);
            assertTrue(right < 1e-5, "right padding: " + right);
            RuntimeException left = assertThrows(RuntimeException.class,
                    () -> KvBatch.disagreementWithDecodingAlone(s, KvBatch.Padding.LEFT));
            assertTrue(left.getMessage().contains("TensorScatter"), left.getMessage());
        }
    }

    private Path export(ai.onnx.proto.OnnxMl.ModelProto model, String name) {
        Path file = tmp.resolve(name + ".onnx");
        OnnxModelIO.save(model, null, file, false);
        return file;
    }

    private double worstDelta(Path file, KvBatch.Padding expected) {
        try (DecoderSession s = DecoderSession.open(file, Device.CPU); KvBatch batch = new KvBatch(s)) {
            assertEquals(expected, s.batchPadding());
            float[][][] alone = new float[PROMPTS.length][][];
            for (int q = 0; q < PROMPTS.length; q++) {
                alone[q] = DecoderSessionTest.runAlone(s, PROMPTS[q], CONTINUATIONS[q]);
            }
            KvBatch.Row[] rows = new KvBatch.Row[PROMPTS.length];
            int[] taken = new int[PROMPTS.length];
            double worst = 0;
            int compared = 0;
            List<Integer> batchSizes = new ArrayList<>();
            for (int step = 0; ; step++) {
                for (int q = 0; q < PROMPTS.length; q++) {
                    if (JOIN_AT[q] == step) {
                        LeftPadding.Inputs in = LeftPadding.prefill(new int[][] {PROMPTS[q]}, 0);
                        rows[q] = batch.join(s.run(in.inputIds(), in.attentionMask(), in.positionIds(),
                                s.emptyCache(1)).cache());
                    }
                    if (rows[q] != null && taken[q] == STEPS[q]) {
                        batch.leave(rows[q]);
                        rows[q] = null;
                    }
                }
                if (batch.size() == 0) {
                    break;
                }
                List<KvBatch.Row> order = batch.rows();
                int[] tokens = new int[order.size()];
                int[] which = new int[order.size()];
                for (int b = 0; b < order.size(); b++) {
                    which[b] = java.util.Arrays.asList(rows).indexOf(order.get(b));
                    tokens[b] = CONTINUATIONS[which[b]][taken[which[b]]];
                }
                batchSizes.add(order.size());
                float[][] logits = batch.step(tokens);
                for (int b = 0; b < order.size(); b++) {
                    int q = which[b];
                    assertEquals(PROMPTS[q].length + taken[q] + 1, order.get(b).length());
                    worst = Math.max(worst, maxAbsDelta(alone[q][PROMPTS[q].length + taken[q]], logits[b]));
                    taken[q]++;
                    compared++;
                }
            }
            assertEquals(List.of(1, 1, 2, 3, 2, 2, 2, 2), batchSizes, "the schedule exercises joins and leaves");
            assertEquals(4 + 6 + 5, compared);
            System.out.printf("KvBatch %s (%s padding): %d rows compared with decoding alone, max |logit delta| %.2e%n",
                    file.getFileName(), expected, compared, worst);
            return worst;
        }
    }

    @Test
    void aGraphWithAFixedBatchOfOneIsRefused() {
        Path file = tmp.resolve("fixed.onnx");
        ai.onnx.proto.OnnxMl.ModelProto m = LlamaOnnxExporter.export(WEIGHTS, ExportDtype.FLOAT);
        var b = m.toBuilder();
        b.getGraphBuilder().getInputBuilderList().stream().filter(i -> i.getName().equals("input_ids")).findFirst()
                .orElseThrow().getTypeBuilder().getTensorTypeBuilder().getShapeBuilder().getDimBuilder(0).setDimValue(1);
        OnnxModelIO.save(b.build(), null, file, false);
        try (DecoderSession s = DecoderSession.open(file, Device.CPU)) {
            assertFalse(s.acceptsBatches());
            assertThrows(IllegalArgumentException.class, () -> new KvBatch(s));
        }
    }

    @Test
    void theSelfCheckPassesOnAttnskipsExport() {
        Path file = tmp.resolve("check.onnx");
        OnnxModelIO.save(LlamaOnnxExporter.export(WEIGHTS, ExportDtype.FLOAT), null, file, false);
        try (DecoderSession s = DecoderSession.open(file, Device.CPU)) {
            double d = KvBatch.disagreementWithDecodingAlone(s);
            System.out.printf("KvBatch self-check on attnskip's export: %.2e%n", d);
            assertTrue(d < 1e-5, "disagreement " + d);
        }
    }

    /**
     * The check tells which padding a graph honours: the ONNX Attention operator honours left
     * padding (its mask hides the padding, positions come from position_ids); GroupQueryAttention
     * does not (it takes each row's past as starting at position 0), and gets right padding instead,
     * each row's length reaching it as seqlens_k, also without position_ids.
     */
    @Test
    void theSelfCheckTellsWhichPaddingThirdPartyGraphsHonour() {
        assertEquals(0.0, disagreement(ThirdPartyGraphs.Dialect.ONNX_ATTENTION, KvBatch.Padding.LEFT), 1e-5);
        double leftPadded = disagreement(ThirdPartyGraphs.Dialect.GQA_SEPARATE, KvBatch.Padding.LEFT);
        System.out.printf("KvBatch self-check on GroupQueryAttention, left padding: %.3f of the logits%n", leftPadded);
        assertTrue(leftPadded > 0.1, "GroupQueryAttention with left padding: " + leftPadded);
        for (ThirdPartyGraphs.Dialect gqa : List.of(ThirdPartyGraphs.Dialect.GQA_SEPARATE, ThirdPartyGraphs.Dialect.GQA_PACKED)) {
            double rightPadded = disagreement(gqa, KvBatch.Padding.RIGHT);
            System.out.printf("KvBatch self-check on %s, right padding: %.2e%n", gqa, rightPadded);
            assertTrue(rightPadded < 1e-5, gqa + " with right padding: " + rightPadded);
        }
    }

    private double disagreement(ThirdPartyGraphs.Dialect dialect, KvBatch.Padding padding) {
        Path file = ThirdPartyGraphs.write(dialect, 2, 5, tmp.resolve(dialect + ".onnx"));
        try (DecoderSession s = DecoderSession.open(file, Device.CPU)) {
            assertTrue(s.acceptsBatches(), dialect.toString());
            if (padding == s.batchPadding()) {
                return KvBatch.disagreementWithDecodingAlone(s);
            }
            return KvBatch.disagreementWithDecodingAlone(s, padding);
        }
    }
}
