package org.attnskip.runtime;

import org.attnskip.export.ExportDtype;
import org.attnskip.export.LlamaOnnxExporter;
import org.attnskip.export.LlamaWeights;
import org.attnskip.export.TestLlamaWeights;
import org.attnskip.layout.ThirdPartyGraphs;
import org.attnskip.onnx.OnnxModelIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

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

    @Test
    void fp32RowsMatchDecodingAlone() {
        assertTrue(worstDelta(ExportDtype.FLOAT) <= 1e-4);
    }

    @Test
    void fp16RowsMatchDecodingAlone() {
        assertTrue(worstDelta(ExportDtype.FLOAT16) <= 2e-2);
    }

    private double worstDelta(ExportDtype dtype) {
        Path file = tmp.resolve(dtype + ".onnx");
        OnnxModelIO.save(LlamaOnnxExporter.export(WEIGHTS, dtype), null, file, false);
        try (DecoderSession s = DecoderSession.open(file, Device.CPU); KvBatch batch = new KvBatch(s)) {
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
                    worst = Math.max(worst, DecoderSessionTest.maxAbsDelta(alone[q][PROMPTS[q].length + taken[q]], logits[b]));
                    taken[q]++;
                    compared++;
                }
            }
            assertEquals(List.of(1, 1, 2, 3, 2, 2, 2, 2), batchSizes, "the schedule exercises joins and leaves");
            assertEquals(4 + 6 + 5, compared);
            System.out.printf("KvBatch %s: %d rows compared with decoding alone, max |logit delta| %.2e%n",
                    dtype, compared, worst);
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
     * The check tells which graphs honour left padding: the ONNX Attention operator does (its mask
     * hides the padding, positions come from position_ids); GroupQueryAttention does not (it takes
     * each row's past as starting at position 0), so a server must not share its decode steps.
     */
    @Test
    void theSelfCheckTellsWhichThirdPartyGraphsHonourLeftPadding() {
        assertEquals(0.0, disagreement(ThirdPartyGraphs.Dialect.ONNX_ATTENTION), 1e-5);
        double gqa = disagreement(ThirdPartyGraphs.Dialect.GQA_SEPARATE);
        System.out.printf("KvBatch self-check on GroupQueryAttention: %.3f of the logits%n", gqa);
        assertTrue(gqa > 0.1, "GroupQueryAttention with left padding: " + gqa);
        Path packed = ThirdPartyGraphs.write(ThirdPartyGraphs.Dialect.GQA_PACKED, 2, 5, tmp.resolve("packed.onnx"));
        try (DecoderSession s = DecoderSession.open(packed, Device.CPU)) {
            assertFalse(s.acceptsBatches(), "no position_ids: rows could not keep their own positions");
        }
    }

    private double disagreement(ThirdPartyGraphs.Dialect dialect) {
        Path file = ThirdPartyGraphs.write(dialect, 2, 5, tmp.resolve(dialect + ".onnx"));
        try (DecoderSession s = DecoderSession.open(file, Device.CPU)) {
            assertTrue(s.acceptsBatches(), dialect.toString());
            return KvBatch.disagreementWithDecodingAlone(s);
        }
    }
}
