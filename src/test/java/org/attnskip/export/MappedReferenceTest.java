package org.attnskip.export;

import org.attnskip.Fixtures;
import org.attnskip.reference.Manipulation;
import org.attnskip.reference.ReferenceLlama;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.nio.file.Path;
import java.util.Set;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * The reference implementation over weights read where they lie (an exported directory's
 * memory-mapped data, a llama2.c checkpoint's mapped rows) gives bit for bit the logits it gives
 * over the same weights in the heap (read by {@link ExportedWeights#read}, which transposes them
 * back, or by {@link Llama2cCheckpoint#read}): the probe's switch experiment does not change when
 * it stops loading the model.
 */
class MappedReferenceTest {
    @TempDir
    Path tmp;

    @ParameterizedTest(name = "{0} {1}, external data {2}, shared classifier {3}, biases {4}")
    @CsvSource({
            "unfused, fp32, false, true, false",
            "unfused, fp32, true, false, true",
            "unfused, fp16, true, false, false",
            "fused, fp32, true, false, true",
            "fused, fp16, false, true, true",
    })
    void exportedDirectoryGivesTheHeapCopysLogitsExactly(String graph, String dtypeName, boolean external, boolean shared,
                                                         boolean biases) {
        LlamaWeights w = TestLlamaWeights.random(TestLlamaWeights.config(48, 80, 3, 6, 2, 67, 64, shared, biases), 21);
        ExportDtype dtype = ExportDtype.parse(dtypeName);
        GraphFlavour flavour = GraphFlavour.FUSED.cliName().equals(graph) ? GraphFlavour.FUSED : GraphFlavour.UNFUSED;
        var proto = flavour == GraphFlavour.FUSED ? FusedLlamaExporter.export(w, dtype) : LlamaOnnxExporter.export(w, dtype);
        ModelDirectory dir = ModelDirectory.write(tmp.resolve("model"), proto,
                ModelManifest.of(w.config, dtype, null, "test", flavour), null, external);

        LlamaWeights inHeap = ExportedWeights.read(dir);
        try (LlamaWeightSource mapped = ExportedWeights.open(dir)) {
            assertSameModel(new ReferenceLlama(inHeap), new ReferenceLlama(mapped), w.config);
            assertSameTensors(inHeap, mapped);
        }
    }

    /** Every part, [out][in] as every source gives it (the mapped one reads stored columns) and, for matrices, as stored. */
    private static void assertSameTensors(LlamaWeights want, LlamaWeightSource got) {
        assertEquals(want.classifierIsEmbedding(), got.classifierIsEmbedding());
        for (WeightPart part : WeightPart.values()) {
            boolean absent = (part == WeightPart.CLASSIFIER && want.classifierIsEmbedding())
                    || (!want.config.qkvBias() && (part == WeightPart.BQ || part == WeightPart.BK || part == WeightPart.BV));
            for (int l = 0; !absent && l < (part.perLayer ? want.config.layers() : 1); l++) {
                float[] outIn = want.weight(part, l).readAll();
                assertArrayEquals(outIn, got.weight(part, l).readAll(), part + " of layer " + l);
                WeightRows stored = got.storedTransposed(part, l);
                if (stored != null) {
                    int out = part.shape(want.config)[0];
                    int in = part.shape(want.config)[1];
                    assertEquals(in, stored.rows(), part + " stored rows");
                    float[] inOut = new float[in * out];
                    stored.read(1, in - 1, inOut, out); // rows in any order: the tail first, then row 0
                    stored.read(0, 1, inOut, 0);
                    for (int i = 0; i < in; i++) {
                        for (int o = 0; o < out; o++) {
                            assertEquals(outIn[o * in + i], inOut[i * out + o], 0f, part + " of layer " + l + " at " + o + "," + i);
                        }
                    }
                }
            }
        }
    }

    @Test
    void llama2cCheckpointReadWhereItLiesGivesTheLoadedLogitsExactly() {
        Path bin = Fixtures.model("stories260K/stories260K.bin");
        LlamaWeights loaded = Llama2cCheckpoint.read(bin);
        try (LlamaWeightSource mapped = Llama2cCheckpoint.open(bin)) {
            assertSameModel(new ReferenceLlama(loaded), new ReferenceLlama(mapped), loaded.config);
        }
    }

    @Test
    void aGraphThatIsNotTheExportersIsRefused() {
        LlamaWeights w = TestLlamaWeights.random(TestLlamaWeights.config(32, 64, 2, 4, 2, 61, 32, true), 3);
        var proto = LlamaOnnxExporter.export(w, ExportDtype.FLOAT).toBuilder();
        proto.getGraphBuilder().removeNode(proto.getGraphBuilder().getNodeCount() - 1);
        ModelDirectory dir = ModelDirectory.write(tmp.resolve("cut"), proto.build(),
                ModelManifest.of(w.config, ExportDtype.FLOAT, null, "test"), null, true);
        var e = assertThrows(ExportedWeights.NotExporterGraph.class, () -> ExportedWeights.open(dir));
        assertEquals(true, e.getMessage().contains("nodes, the exporter's graph"), e.getMessage());
    }

    /** Every pass the probe uses (normal, switch, drop, residual streams), a token-by-token one (freeze) and decoding. */
    private static void assertSameModel(ReferenceLlama want, ReferenceLlama got, LlamaConfig c) {
        SplittableRandom random = new SplittableRandom(4);
        int[] tokens = new int[12];
        for (int i = 0; i < tokens.length; i++) {
            tokens[i] = random.nextInt(c.vocabSize());
        }
        assertRowsEqual(want.logitsAllPositions(tokens), got.logitsAllPositions(tokens), "normal");
        float[][][] streams = want.residualStreams(tokens);
        float[][][] gotStreams = got.residualStreams(tokens);
        for (int l = 0; l < streams.length; l++) {
            assertRowsEqual(streams[l], gotStreams[l], "residual stream at layer " + l);
        }
        var switched = new Manipulation.Switch(1, 5, streams[1][9]);
        assertRowsEqual(want.logitsAllPositions(tokens, switched), got.logitsAllPositions(tokens, switched), "switch");
        var drop = new Manipulation.Drop(Set.of(0, 2));
        assertRowsEqual(want.logitsAllPositions(tokens, drop), got.logitsAllPositions(tokens, drop), "drop");
        var freeze = new Manipulation.Freeze(1);
        assertRowsEqual(want.logitsAllPositions(tokens, freeze), got.logitsAllPositions(tokens, freeze), "freeze");
        for (int pos = 0; pos < 4; pos++) {
            assertArrayEquals(want.forward(tokens[pos], pos), got.forward(tokens[pos], pos), "decoding step " + pos);
        }
    }

    private static void assertRowsEqual(float[][] want, float[][] got, String what) {
        assertEquals(want.length, got.length, what);
        for (int t = 0; t < want.length; t++) {
            assertArrayEquals(want[t], got[t], what + ", position " + t);
        }
    }
}
