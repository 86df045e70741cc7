package org.attnskip.rewrite;

import org.attnskip.export.ExportDtype;
import org.attnskip.export.LlamaOnnxExporter;
import org.attnskip.export.LlamaWeights;
import org.attnskip.export.TestLlamaWeights;
import org.attnskip.layout.LayoutDiscovery;
import org.attnskip.onnx.Graph;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * inspect's parameter count and drop's parameters removed count an int4/int8 MatMulNBits weight as
 * its K x N matrix, not as its packed bytes and block scales: the quantized exports of one model
 * count exactly what its fp32 export counts (plain element counts, where no MatMulNBits is).
 */
class QuantizedParameterCountTest {
    private static final int DIM = 32;
    private static final int KV_DIM = 16;

    @Test
    void quantizedExportsCountWhatTheFloatExportCounts() {
        LlamaWeights w = TestLlamaWeights.random(TestLlamaWeights.config(DIM, 64, 4, 4, 2, 71, 32, false), 5);
        long[] params = new long[3];
        long[] removed = new long[3];
        ExportDtype[] dtypes = {ExportDtype.FLOAT, ExportDtype.INT4, ExportDtype.INT8};
        for (int i = 0; i < dtypes.length; i++) {
            Graph g = new Graph(LlamaOnnxExporter.export(w, dtypes[i]));
            var layout = LayoutDiscovery.discover(g);
            params[i] = layout.params();
            removed[i] = new DropAttentionPass(128).apply(g, layout, LayerSelection.fromLayer(2, 4)).paramsRemoved();
        }
        assertTrue(new Graph(LlamaOnnxExporter.export(w, ExportDtype.INT4)).nodes().stream()
                .anyMatch(n -> n.getOpType().equals("MatMulNBits")));
        assertEquals(params[0], params[1], "int4 params");
        assertEquals(params[0], params[2], "int8 params");
        assertEquals(removed[0], removed[1], "int4 params removed by drop");
        assertEquals(removed[0], removed[2], "int8 params removed by drop");
        // two layers' attention: norm, q, k, v and o weights, plus the exporter's 57 small constants per layer
        // (norm's 2 and eps, 3 head shapes of 4, 2 rotary shapes of 5 + 4, 2 GQA repeats of 1 + 5 + 4, scale, mask fill, shape of 3)
        long weights = 2L * (DIM + DIM * DIM + 2L * KV_DIM * DIM + DIM * DIM);
        assertEquals(weights + 2 * 57, removed[0]);
    }
}
