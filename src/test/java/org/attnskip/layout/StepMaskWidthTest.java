package org.attnskip.layout;

import ai.onnx.proto.OnnxMl.ModelProto;
import ai.onnx.proto.OnnxMl.NodeProto;
import org.attnskip.export.ExportDtype;
import org.attnskip.export.FusedLlamaExporter;
import org.attnskip.export.LlamaOnnxExporter;
import org.attnskip.export.TestLlamaWeights;
import org.attnskip.onnx.Graph;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** The widest decode-step mask a graph allows, read from its GroupQueryAttention rotary tables. */
class StepMaskWidthTest {
    /** Head size 16: the fused export lets GroupQueryAttention apply rotary from tables of 24 positions. */
    private static Graph rotaryInside() {
        return new Graph(FusedLlamaExporter.export(TestLlamaWeights.random(
                TestLlamaWeights.config(64, 96, 2, 4, 2, 97, 24, false, false), 3), ExportDtype.FLOAT));
    }

    @Test
    void rotaryInsideTheAttentionBoundsTheWidthByItsTables() {
        assertEquals(24, StepMaskWidth.limit(rotaryInside()));
    }

    @Test
    void rotaryOutsideTheAttentionLeavesTheWidthToTheCache() {
        // head size 8: rotary runs in RotaryEmbedding nodes before the attention
        Graph fused = new Graph(FusedLlamaExporter.export(TestLlamaWeights.random(
                TestLlamaWeights.config(32, 64, 2, 4, 2, 97, 24, false, false), 3), ExportDtype.FLOAT));
        assertEquals(StepMaskWidth.UNBOUNDED, StepMaskWidth.limit(fused));
        Graph unfused = new Graph(LlamaOnnxExporter.export(TestLlamaWeights.random(
                TestLlamaWeights.config(32, 64, 2, 4, 2, 97, 24, false, false), 3), ExportDtype.FLOAT));
        assertEquals(StepMaskWidth.UNBOUNDED, StepMaskWidth.limit(unfused));
    }

    @Test
    void tablesComputedInTheGraphAllowNoFixedWidth() {
        Graph g = rotaryInside();
        NodeProto attention = g.nodes().stream().filter(n -> n.getOpType().equals("GroupQueryAttention")).findFirst().orElseThrow();
        String table = attention.getInput(7);
        g.add(NodeProto.newBuilder().setOpType("Identity").setName("cos_copy").addInput(table).addOutput("cos_copy_output").build());
        g.renameInput(attention, table, "cos_copy_output");
        ModelProto model = g.toModel();
        assertEquals(0, StepMaskWidth.limit(new Graph(model)));
    }
}
