package org.attnskip.rewrite;

import ai.onnx.proto.OnnxMl.NodeProto;
import org.attnskip.export.ExportDtype;
import org.attnskip.export.LlamaOnnxExporter;
import org.attnskip.export.TestLlamaWeights;
import org.attnskip.onnx.Graph;
import org.attnskip.onnx.GraphCheck;
import org.attnskip.onnx.InvalidGraphException;
import org.attnskip.onnx.OnnxModelIO;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The one rewrite entry point: the check before the save, the stamped metadata, repeated rewrites of one load. */
class RewriteTest {
    @TempDir
    Path tmp;
    private Path base;

    @BeforeEach
    void export() {
        base = tmp.resolve("base.onnx");
        OnnxModelIO.save(LlamaOnnxExporter.export(TestLlamaWeights.random(
                TestLlamaWeights.config(32, 64, 4, 4, 2, 61, 32, false), 5), ExportDtype.FLOAT), null, base, false);
    }

    @Test
    void aBrokenResultIsRefusedAndNothingIsWritten() throws Exception {
        Rewrite rewrite = Rewrite.load(base);
        RewritePass broken = (g, layout, selection) -> {
            ChangeReport report = new DropAttentionPass(16).apply(g, layout, selection);
            NodeProto head = g.producer(layout.logits());
            g.renameInput(head, head.getInput(0), "no_such_value");
            return report;
        };
        Path out = tmp.resolve("out").resolve("broken.onnx");
        InvalidGraphException e = assertThrows(InvalidGraphException.class, () -> rewrite.write(broken,
                RewriteRequest.drop(16), LayerSelection.fromLayer(2, 4), out, "test"));
        assertTrue(e.getMessage().contains("'no_such_value'"), e.getMessage());
        assertFalse(Files.exists(out));
        if (Files.isDirectory(out.getParent())) {
            try (Stream<Path> left = Files.list(out.getParent())) {
                assertEquals(List.of(), left.toList(), "no temporary file left");
            }
        }
    }

    @Test
    void modeOptionsAndCallerRecordsAreStamped() {
        Path out = tmp.resolve("frozen.onnx");
        RewriteRequest request = RewriteRequest.freeze(FreezeKv.SINGLE_INPUT, FreezeForm.DEPLOYABLE)
                .recording(List.of("measured on nothing"), Map.of("auto_layers", "1,2,3"));
        ChangeReport report = Rewrite.file(base, request, layers -> LayerSelection.fromLayer(1, layers), out, "test-version");
        assertEquals(Mode.FREEZE, report.mode());
        assertEquals("measured on nothing", report.notes().get(report.notes().size() - 1));
        var written = OnnxModelIO.load(out).proto();
        Map<String, String> meta = RewriteMetadata.read(written);
        assertEquals("freeze", meta.get("mode"));
        assertEquals("single-input", meta.get("freeze_kv"));
        assertEquals("1,2,3", meta.get("auto_layers"));
        assertEquals("1,2,3", meta.get("layers"));
        assertEquals("test-version", meta.get("version"));
        assertNull(GraphCheck.problem(written.getGraph()));
    }

    @Test
    void eachWriteStartsFromTheOriginalModel() {
        Rewrite rewrite = Rewrite.load(base);
        Path first = tmp.resolve("k1.onnx");
        Path second = tmp.resolve("k3.onnx");
        ChangeReport a = rewrite.write(RewriteRequest.drop(16), LayerSelection.fromLayer(1, 4), first, "t");
        ChangeReport b = rewrite.write(RewriteRequest.drop(16), LayerSelection.fromLayer(3, 4), second, "t");
        assertEquals(List.of(1, 2, 3), a.layers());
        assertEquals(List.of(3), b.layers());
        // the second rewrite dropped one layer of the original, not one more layer of the first result
        assertEquals(a.nodesRemoved() / 3, b.nodesRemoved());
        assertEquals(6, OnnxModelIO.load(second).proto().getGraph().getOutputList().size() - 1,
                "logits plus the K/V outputs of the three kept layers");
    }
}
