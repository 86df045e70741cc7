package org.attnskip.layout;

import ai.onnx.proto.OnnxMl.ModelProto;
import ai.onnx.proto.OnnxMl.NodeProto;
import org.attnskip.export.ExportDtype;
import org.attnskip.export.FusedLlamaExporter;
import org.attnskip.export.LlamaOnnxExporter;
import org.attnskip.export.TestLlamaWeights;
import org.attnskip.onnx.Graph;
import org.attnskip.onnx.OnnxModelIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The widest decode-step mask a graph allows: from its GroupQueryAttention rotary tables, where it reads the mask as lengths only. */
class StepMaskWidthTest {
    /** Head size 16: the fused export lets GroupQueryAttention apply rotary from tables of 24 positions. */
    private static Graph rotaryInside() {
        return new Graph(FusedLlamaExporter.export(TestLlamaWeights.random(
                TestLlamaWeights.config(64, 96, 2, 4, 2, 97, 24, false, false), 3), ExportDtype.FLOAT));
    }

    @Test
    void rotaryInsideTheAttentionBoundsTheWidthByItsTables() {
        assertEquals(24, StepMaskWidth.limit(rotaryInside(), "attention_mask"));
    }

    @Test
    void rotaryOutsideTheAttentionLeavesTheWidthToTheCache() {
        // head size 8: rotary runs in RotaryEmbedding nodes before the attention
        Graph fused = new Graph(FusedLlamaExporter.export(TestLlamaWeights.random(
                TestLlamaWeights.config(32, 64, 2, 4, 2, 97, 24, false, false), 3), ExportDtype.FLOAT));
        assertEquals(StepMaskWidth.UNBOUNDED, StepMaskWidth.limit(fused, "attention_mask"));
    }

    /** The unfused export builds its attention bias from the mask: zeros there would mask positions, so no wider mask. */
    @Test
    void aMaskReadForMoreThanLengthsKeepsItsWidth() {
        Graph unfused = new Graph(LlamaOnnxExporter.export(TestLlamaWeights.random(
                TestLlamaWeights.config(32, 64, 2, 4, 2, 97, 24, false, false), 3), ExportDtype.FLOAT));
        assertEquals(0, StepMaskWidth.limit(unfused, "attention_mask"));

        // a GroupQueryAttention graph that also counts positions from the mask (CumSum) would read the zeros
        Graph g = rotaryInside();
        g.add(NodeProto.newBuilder().setOpType("CumSum").setName("positions_from_mask")
                .addInput("attention_mask").addInput("cumsum_axis").addOutput("positions_from_mask_output").build());
        assertEquals(0, StepMaskWidth.limit(g, "attention_mask"));
    }

    /** ORT GenAI's spelling of the lengths (ReduceSum, Sub, Cast; Shape, Gather, Cast) reads the mask as lengths only. */
    @Test
    void thirdPartyGroupQueryAttentionGraphsTakeAWiderMask(@TempDir Path tmp) {
        for (ThirdPartyGraphs.Dialect d : List.of(ThirdPartyGraphs.Dialect.GQA_PACKED, ThirdPartyGraphs.Dialect.GQA_SEPARATE)) {
            Graph g = OnnxModelIO.load(ThirdPartyGraphs.write(d, 2, 4, tmp.resolve(d + ".onnx"))).graph();
            assertTrue(StepMaskWidth.limit(g, "attention_mask") > 0, d.toString());
        }
    }

    @Test
    void tablesComputedInTheGraphAllowNoFixedWidth() {
        Graph g = rotaryInside();
        NodeProto attention = g.nodes().stream().filter(n -> n.getOpType().equals("GroupQueryAttention")).findFirst().orElseThrow();
        String table = attention.getInput(GroupQueryAttentionSlots.COS_CACHE);
        g.add(NodeProto.newBuilder().setOpType("Identity").setName("cos_copy").addInput(table).addOutput("cos_copy_output").build());
        g.renameInput(attention, table, "cos_copy_output");
        ModelProto model = g.toModel();
        assertEquals(0, StepMaskWidth.limit(new Graph(model), "attention_mask"));
    }
}
