package org.attnskip.export;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.attnskip.onnx.BadInputException;
import org.attnskip.onnx.Half;

import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Writes fp32 arrays as a safetensors file, stored as F32, F16 or BF16. Narrowing rounds to
 * nearest even, as PyTorch does. Used to build checkpoints for tests and synthetic models.
 */
public final class SafetensorsWriter {
    private record Entry(String name, Safetensors.DType dtype, long[] shape, float[] values) {
    }

    private static final ObjectMapper JSON = new ObjectMapper();

    private final List<Entry> entries = new ArrayList<>();
    private final Map<String, String> metadata = new LinkedHashMap<>();

    public SafetensorsWriter add(String name, Safetensors.DType dtype, float[] values, long... shape) {
        long count = 1;
        for (long d : shape) {
            count *= d;
        }
        if (count != values.length) {
            throw new IllegalArgumentException("tensor " + name + ": shape " + Arrays.toString(shape)
                    + " holds " + count + " elements but " + values.length + " were given");
        }
        if (name.equals("__metadata__") || entries.stream().anyMatch(e -> e.name().equals(name))) {
            throw new IllegalArgumentException("duplicate or reserved tensor name " + name);
        }
        entries.add(new Entry(name, dtype, shape.clone(), values));
        return this;
    }

    public SafetensorsWriter metadata(String key, String value) {
        metadata.put(key, value);
        return this;
    }

    public void write(Path file) {
        byte[] header = headerBytes();
        try (OutputStream out = new BufferedOutputStream(Files.newOutputStream(file), 1 << 20)) {
            ByteBuffer length = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(0, header.length);
            out.write(length.array());
            out.write(header);
            for (Entry e : entries) {
                writeData(out, e);
            }
        } catch (IOException e) {
            throw new BadInputException("cannot write " + file + ": " + e.getMessage(), e);
        }
    }

    /** The JSON header, padded with spaces so the data starts 8-byte aligned as the format recommends. */
    private byte[] headerBytes() {
        ObjectNode root = JSON.createObjectNode();
        if (!metadata.isEmpty()) {
            ObjectNode meta = root.putObject("__metadata__");
            metadata.forEach(meta::put);
        }
        long offset = 0;
        for (Entry e : entries) {
            ObjectNode node = root.putObject(e.name());
            node.put("dtype", e.dtype().name());
            ArrayNode shape = node.putArray("shape");
            for (long d : e.shape()) {
                shape.add(d);
            }
            long size = (long) e.values().length * e.dtype().bytes;
            node.putArray("data_offsets").add(offset).add(offset + size);
            offset += size;
        }
        String json;
        try {
            json = JSON.writeValueAsString(root);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
        byte[] raw = json.getBytes(StandardCharsets.UTF_8);
        int padded = (raw.length + 7) / 8 * 8;
        byte[] header = Arrays.copyOf(raw, padded);
        Arrays.fill(header, raw.length, padded, (byte) ' ');
        return header;
    }

    /** Streams the tensor in chunks so a large tensor never needs a second full-size copy. */
    private static void writeData(OutputStream out, Entry e) throws IOException {
        final int chunk = 1 << 16;
        float[] v = e.values();
        ByteBuffer buf = ByteBuffer.allocate(chunk * e.dtype().bytes).order(ByteOrder.LITTLE_ENDIAN);
        for (int start = 0; start < v.length; start += chunk) {
            int end = Math.min(v.length, start + chunk);
            buf.clear();
            for (int i = start; i < end; i++) {
                switch (e.dtype()) {
                    case F32 -> buf.putFloat(v[i]);
                    case F16 -> buf.putShort(Half.fromFloat(v[i]));
                    case BF16 -> buf.putShort(toBFloat16(v[i]));
                }
            }
            out.write(buf.array(), 0, buf.position());
        }
    }

    /** Round to nearest even; NaN stays a (quiet) NaN instead of rounding into infinity. */
    static short toBFloat16(float x) {
        int bits = Float.floatToRawIntBits(x);
        if (Float.isNaN(x)) {
            return (short) ((bits >>> 16) | 0x0040);
        }
        int lsb = (bits >>> 16) & 1;
        return (short) ((bits + 0x7fff + lsb) >>> 16);
    }
}
