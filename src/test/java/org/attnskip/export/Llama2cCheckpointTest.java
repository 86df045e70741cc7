package org.attnskip.export;

import org.attnskip.Fixtures;
import org.attnskip.onnx.BadInputException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.*;

class Llama2cCheckpointTest {
    @TempDir
    Path tmp;

    @Test
    void readsStories260kLegacyV0() throws IOException {
        Path bin = Fixtures.model("stories260K/stories260K.bin");
        LlamaWeights w = Llama2cCheckpoint.read(bin);
        LlamaConfig c = w.config;
        assertEquals(new LlamaConfig(64, 172, 5, 8, 4, 512, 512, 1e-5f, 10000f, null, true, false, 1, 2), c);
        assertSame(w.tokenEmbedding, w.classifier, "the classifier is shared with the embedding");

        // spot-check values at offsets computed here from the legacy layout
        ByteBuffer raw = ByteBuffer.wrap(Files.readAllBytes(bin)).order(ByteOrder.LITTLE_ENDIAN);
        long embedding = 28, rmsAtt = embedding + 4L * 512 * 64, wq = rmsAtt + 4L * 5 * 64;
        long wk = wq + 4L * 5 * 64 * 64, wv = wk + 4L * 5 * 32 * 64, wo = wv + 4L * 5 * 32 * 64;
        long rmsFfn = wo + 4L * 5 * 64 * 64, w1 = rmsFfn + 4L * 5 * 64, w2 = w1 + 4L * 5 * 172 * 64;
        long w3 = w2 + 4L * 5 * 172 * 64, rmsFinal = w3 + 4L * 5 * 172 * 64;
        assertEquals(raw.getFloat((int) embedding + 4 * 777), w.tokenEmbedding[777]);
        assertEquals(raw.getFloat((int) rmsAtt + 4 * (64 * 2 + 5)), w.layers[2].attnNorm()[5]);
        assertEquals(raw.getFloat((int) wk + 4 * (32 * 64 * 3 + 100)), w.layers[3].wk()[100]);
        assertEquals(raw.getFloat((int) wv + 4 * (32 * 64 * 4 + 2047)), w.layers[4].wv()[2047]);
        assertEquals(raw.getFloat((int) w2 + 4 * (172 * 64 + 9)), w.layers[1].w2()[9]);
        assertEquals(raw.getFloat((int) w3 + 4 * (172 * 64 * 5 - 1)), w.layers[4].w3()[172 * 64 - 1]);
        assertEquals(raw.getFloat((int) rmsFinal + 4 * 63), w.finalNorm[63]);
        // after rms_final come the two skipped rotary tables, [512][4] each, and nothing else
        assertEquals(Files.size(bin), rmsFinal + 4L * 64 + 2L * 4 * 512 * 4);
    }

    @Test
    void readsDeep12WithGroupedQueryAttention() {
        LlamaWeights w = Llama2cCheckpoint.read(Fixtures.model("stories-deep12/stories-deep12.bin"));
        LlamaConfig c = w.config;
        assertEquals(96, c.dim());
        assertEquals(256, c.hiddenDim());
        assertEquals(12, c.layers());
        assertEquals(6, c.heads());
        assertEquals(2, c.kvHeads());
        assertEquals(512, c.vocabSize());
        assertEquals(256, c.seqLen());
        assertTrue(c.sharedClassifier());
        assertEquals(32 * 96, w.layers[11].wk().length);
    }

    @Test
    void legacyV0RoundTripWithSeparateClassifier() throws IOException {
        LlamaWeights original = TestLlamaWeights.random(TestLlamaWeights.config(48, 80, 3, 6, 2, 300, 40, false), 7);
        Path file = tmp.resolve("v0.bin");
        Llama2cCheckpointWriter.writeV0(original, file);
        LlamaWeights read = Llama2cCheckpoint.read(file);
        assertEquals(original.config, read.config);
        assertSameWeights(original, read);
        assertNotSame(read.tokenEmbedding, read.classifier);
    }

    @Test
    void v1RoundTripSharedAndSeparate() throws IOException {
        for (boolean shared : new boolean[]{true, false}) {
            LlamaWeights original = TestLlamaWeights.random(TestLlamaWeights.config(32, 72, 2, 4, 4, 260, 16, shared), 3);
            Path file = tmp.resolve("v1-" + shared + ".bin");
            Llama2cCheckpointWriter.writeV1(original, file);
            assertEquals(256 + 4L * (2 * 2 * 32 + 32 + 260 * 32 + 2 * (32 * 32 * 4 + 72 * 32 * 3) + (shared ? 0 : 260 * 32)),
                    Files.size(file));
            LlamaWeights read = Llama2cCheckpoint.read(file);
            assertEquals(original.config, read.config);
            assertSameWeights(original, read);
            assertEquals(shared, read.tokenEmbedding == read.classifier);
        }
    }

    @Test
    void v1RoundTripOfStories260k() throws IOException {
        LlamaWeights original = Llama2cCheckpoint.read(Fixtures.model("stories260K/stories260K.bin"));
        Path file = tmp.resolve("stories260K-v1.bin");
        Llama2cCheckpointWriter.writeV1(original, file);
        assertSameWeights(original, Llama2cCheckpoint.read(file));
    }

    @Test
    void v2RoundTripEqualsTheDequantisedWeights() throws IOException {
        LlamaWeights original = TestLlamaWeights.random(TestLlamaWeights.config(48, 80, 2, 6, 3, 300, 16, false), 11);
        Path file = tmp.resolve("v2.bin");
        int groupSize = Llama2cCheckpointWriter.writeV2(original, file, 64);
        assertEquals(16, groupSize, "64 backs off to 32 then 16 to divide dim 48");
        LlamaWeights read = Llama2cCheckpoint.read(file);
        assertEquals(original.config, read.config);
        assertArrayEquals(Llama2cCheckpointWriter.dequantised(original.tokenEmbedding, 16), read.tokenEmbedding);
        assertArrayEquals(Llama2cCheckpointWriter.dequantised(original.classifier, 16), read.classifier);
        assertArrayEquals(original.finalNorm, read.finalNorm, "norms stay fp32");
        for (int l = 0; l < 2; l++) {
            LlamaWeights.Layer a = original.layers[l], b = read.layers[l];
            assertArrayEquals(a.attnNorm(), b.attnNorm());
            assertArrayEquals(a.ffnNorm(), b.ffnNorm());
            assertArrayEquals(Llama2cCheckpointWriter.dequantised(a.wq(), 16), b.wq());
            assertArrayEquals(Llama2cCheckpointWriter.dequantised(a.wk(), 16), b.wk());
            assertArrayEquals(Llama2cCheckpointWriter.dequantised(a.wv(), 16), b.wv());
            assertArrayEquals(Llama2cCheckpointWriter.dequantised(a.wo(), 16), b.wo());
            assertArrayEquals(Llama2cCheckpointWriter.dequantised(a.w1(), 16), b.w1());
            assertArrayEquals(Llama2cCheckpointWriter.dequantised(a.w2(), 16), b.w2());
            assertArrayEquals(Llama2cCheckpointWriter.dequantised(a.w3(), 16), b.w3());
        }
        // Q8_0 keeps each value within half a quantisation step of the original
        float maxError = 0;
        for (int i = 0; i < original.tokenEmbedding.length; i++) {
            maxError = Math.max(maxError, Math.abs(original.tokenEmbedding[i] - read.tokenEmbedding[i]));
        }
        assertTrue(maxError <= 0.5f / 127 + 1e-6f, "max error " + maxError);
        assertTrue(maxError > 0, "the weights went through int8");
    }

    @Test
    void v2OfStories260kSharesTheClassifier() throws IOException {
        LlamaWeights original = Llama2cCheckpoint.read(Fixtures.model("stories260K/stories260K.bin"));
        Path file = tmp.resolve("stories260K-q80.bin");
        assertEquals(64, Llama2cCheckpointWriter.writeV2(original, file, 64));
        LlamaWeights read = Llama2cCheckpoint.read(file);
        assertSame(read.tokenEmbedding, read.classifier);
        assertArrayEquals(Llama2cCheckpointWriter.dequantised(original.layers[4].w2(), 64), read.layers[4].w2());
    }

    @Test
    void truncatedFilesAreRejected() throws IOException {
        LlamaWeights w = TestLlamaWeights.random(TestLlamaWeights.config(16, 32, 1, 2, 2, 260, 8, true), 1);
        for (String version : new String[]{"v0", "v1", "v2"}) {
            Path file = tmp.resolve(version + ".bin");
            switch (version) {
                case "v0" -> Llama2cCheckpointWriter.writeV0(w, file);
                case "v1" -> Llama2cCheckpointWriter.writeV1(w, file);
                default -> Llama2cCheckpointWriter.writeV2(w, file, 16);
            }
            byte[] bytes = Files.readAllBytes(file);
            Path cut = tmp.resolve(version + "-cut.bin");
            Files.write(cut, Arrays.copyOf(bytes, bytes.length - 1));
            String message = assertThrows(BadInputException.class, () -> Llama2cCheckpoint.read(cut)).getMessage();
            assertTrue(message.contains("truncated") && message.contains("expected " + bytes.length + " bytes"), message);
        }
        Path tiny = tmp.resolve("tiny.bin");
        Files.write(tiny, new byte[10]);
        String message = assertThrows(BadInputException.class, () -> Llama2cCheckpoint.read(tiny)).getMessage();
        assertTrue(message.contains("truncated"), message);
    }

    @Test
    void hugeHeaderOnTinyFileIsRejectedBeforeAllocating() throws IOException {
        Path file = tmp.resolve("huge.bin");
        ByteBuffer header = v1Header(1, 4096, 11008, 32, 32, 32, 32000, 2048); // Llama 2 7B: about 27 GB
        Files.write(file, header.array());
        String message = assertThrows(BadInputException.class, () -> Llama2cCheckpoint.read(file)).getMessage();
        assertTrue(message.contains("truncated") && message.contains("the file has 256"), message);
    }

    @Test
    void wrongMagicIsRejected() throws IOException {
        Path file = tmp.resolve("magic.bin");
        ByteBuffer header = v1Header(1, 16, 32, 1, 2, 2, 260, 8);
        header.putInt(0, 0x616b3433); // "ak43"
        Files.write(file, header.array());
        String message = assertThrows(BadInputException.class, () -> Llama2cCheckpoint.read(file)).getMessage();
        assertTrue(message.contains("not a llama2.c checkpoint") && message.contains("'ak42' magic"), message);
    }

    @Test
    void unsupportedVersionIsRejected() throws IOException {
        Path file = tmp.resolve("version.bin");
        Files.write(file, v1Header(3, 16, 32, 1, 2, 2, 260, 8).array());
        String message = assertThrows(BadInputException.class, () -> Llama2cCheckpoint.read(file)).getMessage();
        assertTrue(message.contains("unsupported llama2.c checkpoint version 3"), message);
    }

    @Test
    void nonsensicalHeadersAreRejected() throws IOException {
        Path notDivisible = tmp.resolve("heads.bin");
        Files.write(notDivisible, v1Header(1, 30, 32, 1, 4, 4, 260, 8).array());
        String message = assertThrows(BadInputException.class, () -> Llama2cCheckpoint.read(notDivisible)).getMessage();
        assertTrue(message.contains("dim 30 is not divisible by n_heads 4"), message);

        Path negative = tmp.resolve("negative.bin");
        Files.write(negative, v1Header(1, 16, -32, 1, 2, 2, 260, 8).array());
        message = assertThrows(BadInputException.class, () -> Llama2cCheckpoint.read(negative)).getMessage();
        assertTrue(message.contains("must be positive") && message.contains("hidden_dim=-32"), message);

        Path kvHeads = tmp.resolve("kv.bin");
        Files.write(kvHeads, v1Header(1, 24, 32, 1, 6, 4, 260, 8).array());
        message = assertThrows(BadInputException.class, () -> Llama2cCheckpoint.read(kvHeads)).getMessage();
        assertTrue(message.contains("not a multiple of n_kv_heads 4"), message);

        Path groupSize = tmp.resolve("group.bin");
        ByteBuffer v2 = v1Header(2, 16, 32, 1, 2, 2, 260, 8);
        v2.putInt(37, 0);
        Files.write(groupSize, v2.array());
        message = assertThrows(BadInputException.class, () -> Llama2cCheckpoint.read(groupSize)).getMessage();
        assertTrue(message.contains("group size 0"), message);

        Path legacy = tmp.resolve("legacy.bin");
        ByteBuffer v0 = ByteBuffer.allocate(1000).order(ByteOrder.LITTLE_ENDIAN);
        v0.putInt(64).putInt(172).putInt(5).putInt(7).putInt(7).putInt(512).putInt(512);
        Files.write(legacy, v0.array());
        message = assertThrows(BadInputException.class, () -> Llama2cCheckpoint.read(legacy)).getMessage();
        assertTrue(message.contains("dim 64 is not divisible by n_heads 7"), message);
    }

    @Test
    void trailingBytesAreRejected() throws IOException {
        LlamaWeights w = TestLlamaWeights.random(TestLlamaWeights.config(16, 32, 1, 2, 2, 260, 8, true), 1);
        Path file = tmp.resolve("long.bin");
        Llama2cCheckpointWriter.writeV1(w, file);
        Files.write(file, new byte[4], java.nio.file.StandardOpenOption.APPEND);
        String message = assertThrows(BadInputException.class, () -> Llama2cCheckpoint.read(file)).getMessage();
        assertTrue(message.contains("4 unexpected bytes"), message);
    }

    @Test
    void missingFileIsABadInput() {
        String message = assertThrows(BadInputException.class,
                () -> Llama2cCheckpoint.read(tmp.resolve("nope.bin"))).getMessage();
        assertTrue(message.contains("not found"), message);
    }

    private static ByteBuffer v1Header(int version, int dim, int hidden, int layers, int heads, int kvHeads, int vocab, int seqLen) {
        ByteBuffer b = ByteBuffer.allocate(256).order(ByteOrder.LITTLE_ENDIAN);
        b.putInt(Llama2cCheckpoint.MAGIC).putInt(version).putInt(dim).putInt(hidden).putInt(layers).putInt(heads)
                .putInt(kvHeads).putInt(vocab).putInt(seqLen).put((byte) 1);
        if (version == 2) {
            b.putInt(16);
        }
        return b;
    }

    static void assertSameWeights(LlamaWeights a, LlamaWeights b) {
        assertArrayEquals(a.tokenEmbedding, b.tokenEmbedding);
        assertArrayEquals(a.finalNorm, b.finalNorm);
        assertArrayEquals(a.classifier, b.classifier);
        assertEquals(a.layers.length, b.layers.length);
        for (int l = 0; l < a.layers.length; l++) {
            LlamaWeights.Layer x = a.layers[l], y = b.layers[l];
            assertArrayEquals(x.attnNorm(), y.attnNorm());
            assertArrayEquals(x.wq(), y.wq());
            assertArrayEquals(x.wk(), y.wk());
            assertArrayEquals(x.wv(), y.wv());
            assertArrayEquals(x.wo(), y.wo());
            assertArrayEquals(x.ffnNorm(), y.ffnNorm());
            assertArrayEquals(x.w1(), y.w1());
            assertArrayEquals(x.w2(), y.w2());
            assertArrayEquals(x.w3(), y.w3());
        }
    }
}
