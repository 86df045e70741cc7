package org.attnskip.export;

import org.attnskip.onnx.BadInputException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SafetensorsTest {
    @TempDir
    Path dir;

    /** Bytes laid out by hand, so the reader is checked against the format and not against our writer. */
    @Test
    void readsHandWrittenFileOfEachDtype() throws IOException {
        String header = "{\"__metadata__\":{\"format\":\"pt\"},"
                + "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                + "\"h\":{\"dtype\":\"F16\",\"shape\":[1,3],\"data_offsets\":[8,14]},"
                + "\"b\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[14,18]}}";
        ByteBuffer data = ByteBuffer.allocate(18).order(ByteOrder.LITTLE_ENDIAN);
        data.putFloat(3.5f).putFloat(-0.25f);
        data.putShort((short) 0x3C00).putShort((short) 0xC000).putShort((short) 0x3555); // 1, -2, 0.333251953125
        data.putShort((short) 0x3F80).putShort((short) 0xC0A0); // 1, -5
        Path file = writeRaw(header, data.array());

        try (Safetensors st = Safetensors.open(file)) {
            assertEquals(List.of("a", "h", "b"), List.copyOf(st.names()));
            assertArrayEquals(new long[]{1, 3}, st.info("h").shape());
            assertArrayEquals(new float[]{3.5f, -0.25f}, st.readFloats("a"));
            assertArrayEquals(new float[]{1f, -2f, 0.333251953125f}, st.readFloats("h"));
            assertArrayEquals(new float[]{1f, -5f}, st.readFloats("b"));
        }
    }

    /**
     * Tensors are read through a mapped window that moves along the file: read whole, and as
     * [2000][2500] rows in order and in reverse through a 1 MB window (10 to 20 rows a window, the
     * last one partial), values on both sides of each window's edge come back in place.
     */
    @Test
    void tensorsLargerThanAReadWindowComeBackWhole() {
        int n = 5_000_000; // 10 MB in bf16, 20 MB in fp32
        float[] values = new float[n];
        for (int i = 0; i < n; i++) {
            values[i] = i % 65536 - 32768f; // exact in fp32
        }
        float[] bf16 = new float[n];
        for (int i = 0; i < n; i++) {
            bf16[i] = (i % 256) * 256f; // exact in bf16
        }
        Path file = dir.resolve("big.safetensors");
        new SafetensorsWriter().add("f", Safetensors.DType.F32, values, n).add("b", Safetensors.DType.BF16, bf16, n).write(file);
        try (Safetensors st = Safetensors.open(file)) {
            assertArrayEquals(values, st.readFloats("f"));
            assertArrayEquals(bf16, st.readFloats("b"));
        }
        int rows = 2000;
        int cols = 2500;
        try (Safetensors st = Safetensors.open(file, 1 << 20)) {
            for (String name : List.of("f", "b")) {
                float[] expected = name.equals("f") ? values : bf16;
                assertArrayEquals(expected, st.rows(name, rows, cols, null).readAll(), name);
                WeightRows reversed = st.rows(name, rows, cols, r -> rows - 1 - r);
                float[] row = new float[cols];
                for (int r = 0; r < rows; r++) {
                    reversed.read(r, 1, row, 0);
                    assertArrayEquals(java.util.Arrays.copyOfRange(expected, (rows - 1 - r) * cols, (rows - r) * cols), row,
                            name + " row " + r);
                }
            }
        }
    }

    @Test
    void writerRoundTripsEachDtype() {
        float[] f32 = {1.1f, -2.2f, 3.3e-8f, 0f};
        float[] f16 = {0.5f, -1.75f, 1024f, 0.0009765625f}; // all exact in fp16
        float[] bf16 = {1f, -3.5f, 0.15625f, 65536f};        // all exact in bf16
        Path file = dir.resolve("t.safetensors");
        new SafetensorsWriter()
                .metadata("format", "pt")
                .add("x", Safetensors.DType.F32, f32, 2, 2)
                .add("y", Safetensors.DType.F16, f16, 4)
                .add("z", Safetensors.DType.BF16, bf16, 1, 4)
                .write(file);
        try (Safetensors st = Safetensors.open(file)) {
            assertArrayEquals(f32, st.readFloats("x"));
            assertArrayEquals(f16, st.readFloats("y"));
            assertArrayEquals(bf16, st.readFloats("z"));
            assertArrayEquals(new long[]{1, 4}, st.info("z").shape());
            assertEquals("BF16", st.info("z").dtype());
        }
    }

    @Test
    void writerRoundsBf16ToNearestEven() {
        float tieDown = Float.intBitsToFloat(0x3F808000); // halfway between 0x3F80 and 0x3F81: even is 0x3F80
        float tieUp = Float.intBitsToFloat(0x3F818000);   // halfway between 0x3F81 and 0x3F82: even is 0x3F82
        float above = Float.intBitsToFloat(0x3F808001);   // just above halfway: 0x3F81
        Path file = dir.resolve("r.safetensors");
        new SafetensorsWriter().add("v", Safetensors.DType.BF16, new float[]{tieDown, tieUp, above}, 3).write(file);
        try (Safetensors st = Safetensors.open(file)) {
            assertArrayEquals(new float[]{
                    Float.intBitsToFloat(0x3F800000), Float.intBitsToFloat(0x3F820000), Float.intBitsToFloat(0x3F810000)
            }, st.readFloats("v"));
        }
    }

    @Test
    void truncatedDataIsReportedWithTheFileName() throws IOException {
        Path file = dir.resolve("cut.safetensors");
        new SafetensorsWriter().add("w", Safetensors.DType.F32, new float[64], 8, 8).write(file);
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.WRITE)) {
            ch.truncate(ch.size() - 10);
        }
        BadInputException e = assertThrows(BadInputException.class, () -> Safetensors.open(file));
        assertTrue(e.getMessage().contains("truncated"), e.getMessage());
        assertTrue(e.getMessage().contains(file.toString()), e.getMessage());
        assertTrue(e.getMessage().contains("tensor w"), e.getMessage());
    }

    @Test
    void truncatedHeaderIsReported() throws IOException {
        Path file = dir.resolve("head.safetensors");
        new SafetensorsWriter().add("w", Safetensors.DType.F32, new float[4], 4).write(file);
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.WRITE)) {
            ch.truncate(20);
        }
        BadInputException e = assertThrows(BadInputException.class, () -> Safetensors.open(file));
        assertTrue(e.getMessage().startsWith("truncated safetensors file"), e.getMessage());
    }

    @Test
    void notSafetensorsAndWrongSizesAreReported() throws IOException {
        Path garbage = dir.resolve("g.safetensors");
        Files.write(garbage, "hello, this is not a safetensors file".getBytes(StandardCharsets.UTF_8));
        assertThrows(BadInputException.class, () -> Safetensors.open(garbage));

        Path mismatch = writeRaw("{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", new byte[8]);
        BadInputException e = assertThrows(BadInputException.class, () -> Safetensors.open(mismatch));
        assertTrue(e.getMessage().contains("data_offsets span 8 bytes"), e.getMessage());
    }

    @Test
    void unsupportedDtypeFailsOnlyWhenRead() throws IOException {
        Path file = writeRaw("{\"i\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]},"
                + "\"f\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", new byte[12]);
        try (Safetensors st = Safetensors.open(file)) {
            assertArrayEquals(new float[]{0f}, st.readFloats("f"));
            BadInputException e = assertThrows(BadInputException.class, () -> st.readFloats("i"));
            assertTrue(e.getMessage().contains("dtype I64"), e.getMessage());
            BadInputException missing = assertThrows(BadInputException.class, () -> st.readFloats("nope"));
            assertTrue(missing.getMessage().contains("tensor nope is missing"), missing.getMessage());
        }
    }

    private Path writeRaw(String header, byte[] data) throws IOException {
        byte[] json = header.getBytes(StandardCharsets.UTF_8);
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.write(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(json.length).array());
        out.write(json);
        out.write(data);
        Path file = Files.createTempFile(dir, "raw", ".safetensors");
        Files.write(file, out.toByteArray());
        return file;
    }
}
