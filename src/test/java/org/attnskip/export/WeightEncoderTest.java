package org.attnskip.export;

import org.attnskip.onnx.ExternalDataWriter;
import org.attnskip.onnx.Half;
import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * The row-block encoder against the definition of each layout, with blocks and bands small
 * enough that a small matrix crosses every edge: partial row blocks, partial tiles, several bands
 * written out of order, a band tile reused by a later tensor, a matrix that is one band, and a
 * synthetic stream whose pairs of values straddle blocks.
 */
class WeightEncoderTest {
    private static final int ROWS = 70;
    private static final int COLS = 131;

    @Test
    void transposedPutsEveryValueAtItsTransposedPlace() {
        float[] m = gaussian(ROWS * COLS, 4);
        for (ExportDtype dtype : ExportDtype.values()) {
            // 3 source rows per block; bands of 1 (fp32) or 3 (fp16 and the 2-byte tiles) source rows
            WeightEncoder encoder = new WeightEncoder(dtype, 3 * COLS, 3 * ROWS * 4);
            collect(encoder.transposed(WeightRows.of(gaussian(ROWS * 2 * COLS, 9), 2 * ROWS, COLS))); // fill the tile first
            float[] back = decode(collect(encoder.transposed(WeightRows.of(m, ROWS, COLS))), dtype);
            assertEquals(m.length, back.length);
            for (int r = 0; r < ROWS; r++) {
                for (int c = 0; c < COLS; c++) {
                    assertEquals(rounded(m[r * COLS + c], dtype), back[c * ROWS + r], 0f, dtype + " at " + r + "," + c);
                }
            }
        }
    }

    @Test
    void asStoredKeepsTheRowMajorOrder() {
        float[] m = gaussian(ROWS * COLS, 5);
        for (ExportDtype dtype : ExportDtype.values()) {
            WeightEncoder encoder = new WeightEncoder(dtype, 2 * COLS + 7, 1024);
            float[] back = decode(collect(encoder.asStored(WeightRows.of(m, ROWS, COLS))), dtype);
            for (int i = 0; i < m.length; i++) {
                assertEquals(rounded(m[i], dtype), back[i], 0f, dtype + " value " + i);
            }
        }
    }

    @Test
    void syntheticRowsReadInBlocksAreTheWholeTensor() {
        // 131 columns: odd, so the two values of one draw fall into two blocks at every other row
        LlamaWeightSource source = SyntheticWeights.source("layers=1,hidden=16,heads=2,ffn=131,vocab=40", 3);
        float[] whole = source.weight(WeightPart.W2, 0).readAll(); // [16][131] in one read
        WeightEncoder encoder = new WeightEncoder(ExportDtype.FLOAT, 131, 1024);
        float[] blocks = decode(collect(encoder.asStored(source.weight(WeightPart.W2, 0))), ExportDtype.FLOAT);
        assertArrayEquals(whole, blocks);
        assertArrayEquals(whole, SyntheticWeights.generate("layers=1,hidden=16,heads=2,ffn=131,vocab=40", 3).layers[0].w2());

        WeightRows once = source.weight(WeightPart.W2, 0);
        once.read(0, 2, new float[2 * 131], 0);
        assertThrows(IllegalStateException.class, () -> once.read(0, 1, new float[131], 0), "made in order only");
    }

    @Test
    void stackedRowsAreThePartsOneAfterAnother() {
        float[] a = gaussian(3 * 5, 1);
        float[] b = gaussian(4 * 5, 2);
        WeightRows both = WeightRows.stacked(WeightRows.of(a, 3, 5), WeightRows.of(b, 4, 5));
        float[] rows2to5 = new float[4 * 5 + 1];
        both.read(2, 4, rows2to5, 1);
        for (int i = 0; i < 5; i++) {
            assertEquals(a[2 * 5 + i], rows2to5[1 + i]);
        }
        for (int i = 0; i < 15; i++) {
            assertEquals(b[i], rows2to5[1 + 5 + i]);
        }
    }

    @Test
    void aMatrixThatIsOneBandIsWrittenInOrder() {
        float[] m = gaussian(ROWS * COLS, 6);
        WeightEncoder encoder = new WeightEncoder(ExportDtype.FLOAT, 3 * COLS, ROWS * COLS * 4);
        java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
        encoder.transposed(WeightRows.of(m, ROWS, COLS)).writeTo(piece -> { // in order only: writeAt would throw
            byte[] b = new byte[piece.remaining()];
            piece.get(b);
            out.writeBytes(b);
        });
        float[] back = decode(out.toByteArray(), ExportDtype.FLOAT);
        for (int r = 0; r < ROWS; r++) {
            for (int c = 0; c < COLS; c++) {
                assertEquals(m[r * COLS + c], back[c * ROWS + r], 0f, "at " + r + "," + c);
            }
        }
    }

    @Test
    void bandsWrittenAtTheirPlacesLandInTheDataFile(@org.junit.jupiter.api.io.TempDir java.nio.file.Path tmp) throws Exception {
        float[] m = gaussian(ROWS * COLS, 7);
        WeightEncoder encoder = new WeightEncoder(ExportDtype.FLOAT16, 3 * COLS, 5 * COLS * 2); // bands of 5 rows
        java.nio.file.Path file = tmp.resolve("model.onnx.data");
        long length = (long) ROWS * COLS * 2;
        ai.onnx.proto.OnnxMl.TensorProto header = ai.onnx.proto.OnnxMl.TensorProto.newBuilder().setName("w").build();
        try (ExternalDataWriter writer = new ExternalDataWriter(file, "model.onnx.data", null)) {
            writer.add(header, 100, sink -> sink.write(ByteBuffer.allocate(100))); // the tensor starts at offset 128
            writer.add(header, length, encoder.transposed(WeightRows.of(m, ROWS, COLS)));
        }
        byte[] bytes = java.nio.file.Files.readAllBytes(file);
        assertEquals(128 + length, bytes.length);
        float[] back = decode(java.util.Arrays.copyOfRange(bytes, 128, bytes.length), ExportDtype.FLOAT16);
        for (int r = 0; r < ROWS; r++) {
            for (int c = 0; c < COLS; c++) {
                assertEquals(rounded(m[r * COLS + c], ExportDtype.FLOAT16), back[c * ROWS + r], 0f, "at " + r + "," + c);
            }
        }
    }

    /** The bytes a sink receives, in order or each at its place; every byte must come exactly once. */
    private static byte[] collect(ExternalDataWriter.TensorBytes bytes) {
        java.io.ByteArrayOutputStream inOrder = new java.io.ByteArrayOutputStream();
        java.util.TreeMap<Long, byte[]> placed = new java.util.TreeMap<>();
        bytes.writeTo(new ExternalDataWriter.ByteSink() {
            @Override
            public void write(ByteBuffer piece) {
                inOrder.writeBytes(take(piece));
            }

            @Override
            public void writeAt(long offset, ByteBuffer piece) {
                assertEquals(null, placed.put(offset, take(piece)), "offset " + offset + " written twice");
            }
        });
        if (placed.isEmpty()) {
            return inOrder.toByteArray();
        }
        assertEquals(0, inOrder.size(), "a tensor written both in order and at places");
        java.io.ByteArrayOutputStream all = new java.io.ByteArrayOutputStream();
        for (var e : placed.entrySet()) {
            assertEquals(all.size(), (long) e.getKey(), "pieces leave no gap and do not overlap");
            all.writeBytes(e.getValue());
        }
        return all.toByteArray();
    }

    private static byte[] take(ByteBuffer piece) {
        byte[] b = new byte[piece.remaining()];
        piece.get(b);
        return b;
    }

    private static float[] decode(byte[] bytes, ExportDtype dtype) {
        ByteBuffer b = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        int size = dtype == ExportDtype.FLOAT16 ? 2 : 4;
        float[] out = new float[bytes.length / size];
        for (int i = 0; i < out.length; i++) {
            out[i] = size == 2 ? Half.toFloat(b.getShort(2 * i)) : b.getFloat(4 * i);
        }
        return out;
    }

    private static float rounded(float v, ExportDtype dtype) {
        return dtype == ExportDtype.FLOAT16 ? Half.toFloat(Half.fromFloat(v)) : v;
    }

    private static float[] gaussian(int n, long seed) {
        Random r = new Random(seed);
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) r.nextGaussian();
        }
        return v;
    }
}
