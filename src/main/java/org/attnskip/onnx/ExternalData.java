package org.attnskip.onnx;

import ai.onnx.proto.OnnxMl.StringStringEntryProto;
import ai.onnx.proto.OnnxMl.TensorProto;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/** The external-data fields of a TensorProto (location, offset, length) and reading them. */
public record ExternalData(String location, long offset, long length) {

    public static boolean isExternal(TensorProto t) {
        return t.getDataLocation() == TensorProto.DataLocation.EXTERNAL;
    }

    public static ExternalData of(TensorProto t) {
        String location = null;
        long offset = 0;
        long length = -1;
        for (StringStringEntryProto e : t.getExternalDataList()) {
            switch (e.getKey()) {
                case "location" -> location = e.getValue();
                case "offset" -> offset = number(t, e);
                case "length" -> length = number(t, e);
                default -> { /* checksum and others are optional */ }
            }
        }
        if (location == null) {
            throw new BadInputException("tensor '" + t.getName() + "' is marked external but has no location");
        }
        return new ExternalData(location, offset, length);
    }

    private static long number(TensorProto t, StringStringEntryProto e) {
        try {
            long v = Long.parseLong(e.getValue().strip());
            if (v >= 0) {
                return v;
            }
        } catch (NumberFormatException ignored) {
            // reported below
        }
        throw new BadInputException("tensor '" + t.getName() + "' has a bad external-data " + e.getKey() + " '"
                + ConfinedPath.printable(e.getValue()) + "'");
    }

    /** The data file, inside {@code baseDir}; a location leading elsewhere is refused. */
    public Path file(Path baseDir, String tensorName) {
        return ConfinedPath.resolve(baseDir, location, "external data of tensor '" + tensorName + "'");
    }

    /** Reads this tensor's bytes from the data file beside the model. */
    public ByteBuffer read(Path baseDir, String tensorName) {
        Path file = file(baseDir, tensorName);
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            long size = ch.size();
            long len = length >= 0 ? length : size - offset;
            if (len < 0 || offset > size || len > size - offset) {
                throw new BadInputException("external data for '" + tensorName + "' runs past the end of "
                        + file + " (offset " + offset + " + length " + len + " > " + size + " bytes)");
            }
            if (len > Integer.MAX_VALUE) {
                throw new BadInputException("tensor '" + tensorName + "' is over 2 GB, too large to read into memory");
            }
            ByteBuffer buf = ByteBuffer.allocate((int) len);
            while (buf.hasRemaining()) {
                if (ch.read(buf, offset + buf.position()) < 0) {
                    throw new BadInputException("external data file " + file + " ended early");
                }
            }
            buf.flip();
            return buf;
        } catch (NoSuchFileException e) {
            throw new BadInputException("missing external data file " + file + " (needed by tensor '" + tensorName + "')");
        } catch (IOException e) {
            throw new BadInputException("cannot read external data file " + file + ": " + e.getMessage(), e);
        }
    }

    static boolean exists(Path baseDir, String location) {
        return Files.isRegularFile(baseDir.resolve(location));
    }
}
