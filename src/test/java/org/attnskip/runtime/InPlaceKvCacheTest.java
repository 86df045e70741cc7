package org.attnskip.runtime;

import static org.attnskip.TestTokens.longs;
import static org.attnskip.TestTokens.ones;
import static org.attnskip.TestTokens.range;
import org.attnskip.export.ExportDtype;
import org.attnskip.export.FusedLlamaExporter;
import org.attnskip.export.LlamaOnnxExporter;
import org.attnskip.export.LlamaWeights;
import org.attnskip.export.TestLlamaWeights;
import org.attnskip.onnx.OnnxModelIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The fused graph's cache is one buffer per cache input that GroupQueryAttention writes in place:
 * after each run the buffers we allocated hold exactly the K/V that the growing cache's present
 * outputs hold, the positions not yet used are still zero, and a decode step keeps the same buffers.
 */
class InPlaceKvCacheTest {
    private static final int[] PROMPT = {1, 17, 42, 5, 88, 23, 9};
    private static final int NEXT = 31;
    private static final int CAPACITY = 16;

    @TempDir
    Path tmp;

    @Test
    void rotaryInsideAttention() {
        // head size 16: GroupQueryAttention rotates q and k itself
        check(TestLlamaWeights.random(TestLlamaWeights.config(64, 96, 2, 4, 2, 97, 64, false, false), 5), ExportDtype.FLOAT);
    }

    @Test
    void rotaryBeforeAttention() {
        // head size 8: RotaryEmbedding nodes rotate q and k, the cache is GroupQueryAttention's all the same
        check(TestLlamaWeights.random(TestLlamaWeights.config(32, 64, 2, 4, 2, 97, 64, false, false), 6), ExportDtype.FLOAT);
    }

    @Test
    void fp16Cache() {
        check(TestLlamaWeights.random(TestLlamaWeights.config(64, 96, 2, 4, 2, 97, 64, false, false), 7),
                ExportDtype.FLOAT16);
    }

    @Test
    void unfusedGraphKeepsTheGrowingCache() {
        LlamaWeights w = TestLlamaWeights.random(TestLlamaWeights.config(64, 96, 2, 4, 2, 97, 64, false, false), 5);
        try (DecoderSession s = DecoderSession.open(save(LlamaOnnxExporter.export(w, ExportDtype.FLOAT), "unfused"),
                Device.CPU)) {
            assertFalse(s.updatesCacheInPlace());
            KvCache cache = s.emptyCache(1, CAPACITY);
            assertFalse(cache.inPlace());
            cache.close();
        }
    }

    private void check(LlamaWeights w, ExportDtype dtype) {
        try (DecoderSession s = DecoderSession.open(save(FusedLlamaExporter.export(w, dtype), "fused"),
                Device.CPU)) {
            assertTrue(s.updatesCacheInPlace());
            int n = PROMPT.length;
            DecoderSession.Output grown = s.run(new long[][] {longs(PROMPT)}, new long[][] {ones(n)},
                    new long[][] {range(n)}, s.growingCache(1));
            DecoderSession.Output inPlace = s.run(new long[][] {longs(PROMPT)}, new long[][] {ones(n)},
                    new long[][] {range(n)}, s.emptyCache(1, CAPACITY));
            List<ByteBuffer> buffers = inPlace.cache().buffers();
            assertEquals(s.slots().size(), buffers.size());
            assertSameCache(s, grown.cache(), inPlace.cache(), n);

            DecoderSession.Output grownStep = s.run(new long[][] {{NEXT}}, new long[][] {ones(n + 1)},
                    new long[][] {{n}}, grown.cache());
            DecoderSession.Output step = s.run(new long[][] {{NEXT}}, new long[][] {ones(n + 1)}, new long[][] {{n}},
                    inPlace.cache());
            for (int i = 0; i < buffers.size(); i++) {
                assertSame(buffers.get(i), step.cache().buffers().get(i), "the decode step reuses the buffer");
            }
            assertEquals(n + 1, step.cache().length());
            assertSameCache(s, grownStep.cache(), step.cache(), n + 1);
            float[] a = grownStep.logits().at(0, 0);
            float[] b = step.logits().at(0, 0);
            for (int v = 0; v < a.length; v++) {
                assertEquals(a[v], b[v], dtype == ExportDtype.FLOAT ? 1e-6f : 1e-3f, "logit " + v);
            }
            grownStep.cache().close();
            step.cache().close();
        }
    }

    /**
     * Byte for byte: positions below {@code length} of each buffer equal the growing cache's present
     * tensor, and the rest are still zero.
     */
    private static void assertSameCache(DecoderSession s, KvCache grown, KvCache inPlace, int length) {
        for (int i = 0; i < s.slots().size(); i++) {
            DecoderSession.CacheSlot slot = s.slots().get(i);
            ByteBuffer expected = grown.tensors().get(slot.past()).getByteBuffer();
            ByteBuffer actual = inPlace.buffers().get(i);
            int rowBytes = (int) (slot.bytesPerPosition() / slot.heads());
            assertEquals(slot.heads() * length * rowBytes, expected.remaining());
            for (int h = 0; h < slot.heads(); h++) {
                for (int p = 0; p < CAPACITY; p++) {
                    for (int b = 0; b < rowBytes; b++) {
                        byte got = actual.get((h * CAPACITY + p) * rowBytes + b);
                        if (p < length) {
                            assertEquals(expected.get((h * length + p) * rowBytes + b), got,
                                    slot.past() + " head " + h + " position " + p);
                        } else {
                            assertEquals(0, got, slot.past() + " head " + h + " unused position " + p);
                        }
                    }
                }
            }
        }
    }

    private Path save(ai.onnx.proto.OnnxMl.ModelProto m, String name) {
        Path file = tmp.resolve(name + ".onnx");
        OnnxModelIO.save(m, null, file, false);
        return file;
    }
}
