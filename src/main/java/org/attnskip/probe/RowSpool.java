package org.attnskip.probe;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * Float rows of one width kept in a scratch file: written block by block (one calibration
 * sequence's positions), then read back in the same order. A calibration at 16k tokens of a
 * 2048-wide model holds 134 MB per spool, which belongs on disk, not in the heap.
 */
final class RowSpool implements AutoCloseable {
    private final Path file;
    private final int width;
    private final FileChannel channel;
    private boolean reading;

    RowSpool(Path file, int width) {
        this.file = file;
        this.width = width;
        try {
            this.channel = FileChannel.open(file, StandardOpenOption.CREATE_NEW, StandardOpenOption.READ,
                    StandardOpenOption.WRITE);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    void write(float[][] rows) {
        if (reading) {
            throw new IllegalStateException("the spool is being read");
        }
        ByteBuffer bytes = ByteBuffer.allocate(4 * width * rows.length).order(ByteOrder.LITTLE_ENDIAN);
        FloatBuffer floats = bytes.asFloatBuffer();
        for (float[] row : rows) {
            if (row.length != width) {
                throw new IllegalArgumentException("row of " + row.length + " values in a spool of width " + width);
            }
            floats.put(row);
        }
        try {
            while (bytes.hasRemaining()) {
                channel.write(bytes);
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** The next {@code count} rows; the first read starts from the beginning. */
    float[][] read(int count) {
        try {
            if (!reading) {
                channel.position(0);
                reading = true;
            }
            ByteBuffer bytes = ByteBuffer.allocate(4 * width * count).order(ByteOrder.LITTLE_ENDIAN);
            while (bytes.hasRemaining()) {
                if (channel.read(bytes) < 0) {
                    throw new IllegalStateException("spool " + file + " ends before the rows asked for");
                }
            }
            bytes.flip();
            FloatBuffer floats = bytes.asFloatBuffer();
            float[][] rows = new float[count][width];
            for (float[] row : rows) {
                floats.get(row);
            }
            return rows;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    @Override
    public void close() {
        try {
            channel.close();
            Files.deleteIfExists(file);
        } catch (IOException ignored) {
            // scratch space; the caller removes the directory
        }
    }
}
