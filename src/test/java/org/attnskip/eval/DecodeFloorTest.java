package org.attnskip.eval;

import org.attnskip.export.ExportDtype;
import org.attnskip.export.FusedLlamaExporter;
import org.attnskip.export.LlamaOnnxExporter;
import org.attnskip.export.LlamaWeights;
import org.attnskip.export.SyntheticWeights;
import org.attnskip.onnx.OnnxModelIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class DecodeFloorTest {
    @TempDir
    Path tmp;

    @Test
    void weightsReadPerStepAreEveryMatrixAndNormButTheIndexedTables() {
        int layers = 3;
        int dim = 32;
        int kvDim = 16; // 4 heads of 8, 2 KV heads
        int ffn = 48;
        int vocab = 40;
        LlamaWeights weights = SyntheticWeights.generate("layers=3,hidden=32,heads=4,kv_heads=2,ffn=48,vocab=40,seq=64", 5);
        Path file = tmp.resolve("model.onnx");
        OnnxModelIO.save(LlamaOnnxExporter.export(weights, ExportDtype.FLOAT), null, file, false);
        Path fused = tmp.resolve("fused.onnx");
        OnnxModelIO.save(FusedLlamaExporter.export(weights, ExportDtype.FLOAT), null, fused, false);

        // Per layer: wq, wo (dim x dim), wk, wv (dim x kvDim), w1, w2, w3 (dim x ffn), two norms; then the
        // final norm and the classifier. The token embedding and the rotary tables are only indexed.
        long floats = (long) layers * (2L * dim * dim + 2L * dim * kvDim + 3L * dim * ffn + 2L * dim) + dim + (long) vocab * dim;
        long counted = DecodeFloor.weightBytesPerStep(OnnxModelIO.load(file));
        // The unfused graph's scalars and shape vectors (two, eps, axes: 1.4 KB here) are read too.
        assertTrue(counted >= 4 * floats && counted < 4 * floats + 2048, counted + " vs " + 4 * floats);
        // The fused graph packs q|k|v and hands the rotary tables to ONNX Runtime's ops, which index them too.
        long countedFused = DecodeFloor.weightBytesPerStep(OnnxModelIO.load(fused));
        assertTrue(countedFused >= 4 * floats && countedFused < 4 * floats + 2048, countedFused + " vs " + 4 * floats);

        DecodeFloor floor = new DecodeFloor(4 * floats, 2L * kvDim * 4 * layers);
        assertEquals(4 * floats + 100L * 2 * kvDim * 4 * layers, floor.bytesPerStep(100));
        assertEquals(floor.bytesPerStep(100) / 1e9 * 1e3, floor.floorMs(100, 1e9), 1e-12);
    }

    @Test
    void bandwidthIsPositiveAndFinite() {
        double b = MemoryBandwidth.measure(2, 1 << 20, 2);
        assertTrue(b > 1e8 && Double.isFinite(b), "bytes/s " + b);
    }

    @Test
    void sumReadsEveryElement() {
        long[] a = new long[1027];
        for (int i = 0; i < a.length; i++) {
            a[i] = i;
        }
        assertEquals(1026L * 1027 / 2, MemoryBandwidth.sum(a));
    }
}
