package org.attnskip.export;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.attnskip.onnx.BadInputException;

import java.io.Closeable;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.Collections;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import java.util.function.IntUnaryOperator;

/**
 * Reads one safetensors file: an 8-byte little-endian header length, a JSON header giving each
 * tensor's dtype, shape and byte range (relative to the end of the header), then the raw bytes.
 * The header is checked against the file size when the file is opened, so a truncated download
 * fails at once and names the file. Tensors are read through a mapped window (see {@link MappedWindow}) and
 * widened to fp32 a block of rows at a time.
 */
public final class Safetensors implements Closeable {

    /** The element types we convert to fp32. */
    public enum DType {
        F32(4), F16(2), BF16(2);

        public final int bytes;

        DType(int bytes) {
            this.bytes = bytes;
        }
    }

    /** One header entry; {@code begin} and {@code end} are absolute file offsets. */
    public record TensorInfo(String name, String dtype, long[] shape, long begin, long end) {
        public long elementCount() {
            long n = 1;
            for (long d : shape) {
                n = Math.multiplyExact(n, d);
            }
            return n;
        }

        public String shapeString() {
            return Arrays.toString(shape);
        }
    }

    /** The safetensors specification caps the header at 100 MB; anything larger is corruption. */
    private static final long MAX_HEADER_BYTES = 100L << 20;
    private static final ObjectMapper JSON = new ObjectMapper();

    private final Path file;
    private final FileChannel channel;
    private final Map<String, TensorInfo> tensors;
    private final MappedWindow window;

    private Safetensors(Path file, FileChannel channel, Map<String, TensorInfo> tensors, long windowBytes)
            throws IOException {
        this.file = file;
        this.channel = channel;
        this.tensors = tensors;
        this.window = new MappedWindow(file, channel, windowBytes);
    }

    public static Safetensors open(Path file) {
        return open(file, MappedWindow.WINDOW_BYTES);
    }

    /** With another mapped window size, so that tests cross window edges on small files. */
    static Safetensors open(Path file, long windowBytes) {
        FileChannel channel;
        try {
            channel = FileChannel.open(file, StandardOpenOption.READ);
        } catch (NoSuchFileException e) {
            throw new BadInputException("no such file: " + file);
        } catch (IOException e) {
            throw new BadInputException("cannot read " + file + ": " + e.getMessage(), e);
        }
        try {
            Map<String, TensorInfo> tensors = readHeader(file, channel);
            return new Safetensors(file, channel, tensors, windowBytes);
        } catch (IOException e) {
            closeQuietly(channel);
            throw new BadInputException("cannot read " + file + ": " + e.getMessage(), e);
        } catch (RuntimeException e) {
            closeQuietly(channel);
            throw e;
        }
    }

    public Path file() {
        return file;
    }

    /** Tensor names in header order. */
    public Set<String> names() {
        return Collections.unmodifiableSet(tensors.keySet());
    }

    public boolean contains(String name) {
        return tensors.containsKey(name);
    }

    public TensorInfo info(String name) {
        TensorInfo info = tensors.get(name);
        if (info == null) {
            throw new BadInputException("tensor " + name + " is missing from " + file);
        }
        return info;
    }

    /** The tensor's elements in row-major order, converted to fp32. */
    public float[] readFloats(String name) {
        TensorInfo info = info(name);
        long count = info.elementCount();
        if (count > Integer.MAX_VALUE - 8) {
            throw new BadInputException("tensor " + name + " in " + file + " has " + count
                    + " elements, more than a Java array can hold");
        }
        return rows(name, 1, (int) count, null).readAll();
    }

    /**
     * The tensor as [rows][cols] (the caller has checked its shape), widened to fp32 block by block
     * as it is read, through this file's mapped window.
     *
     * @param storedRow maps each row asked for to the row stored; null for the stored order
     */
    WeightRows rows(String name, int rows, int cols, IntUnaryOperator storedRow) {
        TensorInfo info = info(name);
        DType dtype = supportedDType(info);
        if ((long) rows * cols != info.elementCount()) {
            throw new IllegalArgumentException(name + ": " + rows + " x " + cols + " != " + info.elementCount());
        }
        return new MappedRows(window, info.begin(), rows, cols, dtype, storedRow);
    }

    @Override
    public void close() {
        window.close();
        closeQuietly(channel);
    }

    private DType supportedDType(TensorInfo info) {
        try {
            return DType.valueOf(info.dtype());
        } catch (IllegalArgumentException e) {
            throw new BadInputException("tensor " + info.name() + " in " + file + " has dtype " + info.dtype()
                    + " (supported: F32, F16, BF16)");
        }
    }

    private static Map<String, TensorInfo> readHeader(Path file, FileChannel channel) {
        try {
            long fileSize = channel.size();
            if (fileSize < 8) {
                throw new BadInputException("not a safetensors file (shorter than 8 bytes): " + file);
            }
            ByteBuffer lengthBytes = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
            readFully(channel, lengthBytes, 0);
            long headerLength = lengthBytes.getLong(0);
            if (headerLength < 2 || headerLength > MAX_HEADER_BYTES) {
                throw new BadInputException("not a safetensors file (header length " + headerLength + "): " + file);
            }
            if (8 + headerLength > fileSize) {
                throw new BadInputException("truncated safetensors file (header of " + headerLength
                        + " bytes but the file has " + fileSize + "): " + file);
            }
            ByteBuffer headerBytes = ByteBuffer.allocate((int) headerLength);
            readFully(channel, headerBytes, 8);
            JsonNode header;
            try {
                header = JSON.readTree(new String(headerBytes.array(), StandardCharsets.UTF_8));
            } catch (JsonProcessingException e) {
                throw new BadInputException("not a safetensors file (header is not JSON): " + file);
            }
            if (header == null || !header.isObject()) {
                throw new BadInputException("not a safetensors file (header is not a JSON object): " + file);
            }
            return parseEntries(file, header, 8 + headerLength, fileSize);
        } catch (IOException e) {
            throw new BadInputException("cannot read " + file + ": " + e.getMessage(), e);
        }
    }

    private static Map<String, TensorInfo> parseEntries(Path file, JsonNode header, long dataStart, long fileSize) {
        Map<String, TensorInfo> tensors = new LinkedHashMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = header.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> field = it.next();
            String name = field.getKey();
            if (name.equals("__metadata__")) {
                continue;
            }
            JsonNode entry = field.getValue();
            JsonNode dtype = entry.get("dtype");
            JsonNode shape = entry.get("shape");
            JsonNode offsets = entry.get("data_offsets");
            if (dtype == null || !dtype.isTextual() || shape == null || !shape.isArray()
                    || offsets == null || !offsets.isArray() || offsets.size() != 2) {
                throw new BadInputException("bad safetensors header entry for " + name
                        + " (needs dtype, shape and data_offsets): " + file);
            }
            long[] dims = new long[shape.size()];
            for (int i = 0; i < dims.length; i++) {
                JsonNode d = shape.get(i);
                if (!d.canConvertToLong() || d.asLong() < 0) {
                    throw new BadInputException("bad shape " + shape + " for tensor " + name + " in " + file);
                }
                dims[i] = d.asLong();
            }
            long begin = offsets.get(0).asLong(-1);
            long end = offsets.get(1).asLong(-1);
            if (begin < 0 || end < begin) {
                throw new BadInputException("bad data_offsets " + offsets + " for tensor " + name + " in " + file);
            }
            TensorInfo info = new TensorInfo(name, dtype.asText(), dims, dataStart + begin, dataStart + end);
            if (info.end() > fileSize) {
                throw new BadInputException("truncated safetensors file: tensor " + name + " ends at byte "
                        + info.end() + " but the file has " + fileSize + " bytes: " + file);
            }
            checkByteCount(file, info);
            tensors.put(name, info);
        }
        return tensors;
    }

    private static void checkByteCount(Path file, TensorInfo info) {
        DType dtype;
        try {
            dtype = DType.valueOf(info.dtype());
        } catch (IllegalArgumentException e) {
            return; // unsupported dtypes are reported only if someone reads them
        }
        long expected;
        try {
            expected = Math.multiplyExact(info.elementCount(), dtype.bytes);
        } catch (ArithmeticException e) {
            throw new BadInputException("bad shape " + info.shapeString() + " for tensor " + info.name() + " in " + file);
        }
        if (info.end() - info.begin() != expected) {
            throw new BadInputException("tensor " + info.name() + " in " + file + " has shape " + info.shapeString()
                    + " and dtype " + info.dtype() + " (" + expected + " bytes) but data_offsets span "
                    + (info.end() - info.begin()) + " bytes");
        }
    }

    private static void readFully(FileChannel channel, ByteBuffer buffer, long position) throws IOException {
        long pos = position;
        while (buffer.hasRemaining()) {
            int n = channel.read(buffer, pos);
            if (n < 0) {
                throw new IOException("unexpected end of file");
            }
            pos += n;
        }
    }

    private static void closeQuietly(FileChannel channel) {
        try {
            channel.close();
        } catch (IOException ignored) {
            // nothing useful to do: we only read from it
        }
    }
}
