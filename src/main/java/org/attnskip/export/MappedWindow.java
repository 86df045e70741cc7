package org.attnskip.export;

import org.attnskip.onnx.BadInputException;
import sun.misc.Unsafe;

import java.io.IOException;
import java.lang.reflect.Field;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;

/**
 * Reads a checkpoint file through a memory mapping of one window of it at a time (64 MB, or one
 * row if that is longer), so the converters read the page cache directly, without copying it into
 * the Java heap first.
 * <p>
 * Mapped pages count towards the process's resident memory for as long as they are mapped, and
 * Java 17 unmaps a buffer only when the garbage collector happens to collect it: mapping a whole
 * 16 GB checkpoint would show 16 GB resident, and windows left to the collector pile up the same
 * way. So a window is unmapped as soon as the next one is mapped, through
 * {@code Unsafe.invokeCleaner} (jdk.unsupported; the supported way, the foreign memory API's
 * closeable mappings, is final only in Java 22). The views {@link #at} returns must not be used
 * after the next call or after {@link #close}: their memory is gone.
 */
final class MappedWindow implements AutoCloseable {
    static final long WINDOW_BYTES = 64L << 20;
    private static final Unsafe UNSAFE = unsafe();

    private final Path file;
    private final FileChannel channel;
    private final long fileSize;
    private final long windowBytes;
    private MappedByteBuffer map;
    private long mapStart;
    private long mapEnd;

    MappedWindow(Path file, FileChannel channel) throws IOException {
        this(file, channel, WINDOW_BYTES);
    }

    /** With another window size, so that tests cross window edges on small files. */
    MappedWindow(Path file, FileChannel channel, long windowBytes) throws IOException {
        this.file = file;
        this.channel = channel;
        this.fileSize = channel.size();
        this.windowBytes = windowBytes;
    }

    /** Bytes {@code [position, position + length)} of the file, little-endian; valid until the next call. */
    ByteBuffer at(long position, int length) {
        if (position < 0 || position + length > fileSize) {
            throw new BadInputException(file + " ends at byte " + fileSize + ", before " + (position + length));
        }
        if (map == null || position < mapStart || position + length > mapEnd) {
            unmap();
            long end = Math.min(fileSize, position + Math.max(windowBytes, length));
            try {
                map = channel.map(FileChannel.MapMode.READ_ONLY, position, end - position);
            } catch (IOException e) {
                throw new BadInputException("cannot map " + file + ": " + e.getMessage(), e);
            }
            mapStart = position;
            mapEnd = end;
        }
        return map.slice((int) (position - mapStart), length).order(ByteOrder.LITTLE_ENDIAN);
    }

    @Override
    public void close() {
        unmap();
    }

    private void unmap() {
        if (map != null) {
            UNSAFE.invokeCleaner(map);
            map = null;
        }
    }

    private static Unsafe unsafe() {
        try {
            Field f = Unsafe.class.getDeclaredField("theUnsafe");
            f.setAccessible(true);
            return (Unsafe) f.get(null);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }
}
