package org.attnskip.onnx;

import ai.onnx.proto.OnnxMl.StringStringEntryProto;
import ai.onnx.proto.OnnxMl.TensorProto;

import java.io.Closeable;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * Appends tensors to an external data file one at a time and hands back the TensorProto that
 * refers to them, so a graph of any size is built without holding its weights. Every model
 * attnskip saves with external data goes through here: tensors of at least
 * {@link OnnxModelIO#EXTERNAL_TENSOR_MIN_BYTES} go out, each at a 64-byte aligned offset, in the
 * order they are added; smaller ones stay inline.
 */
public final class ExternalDataWriter implements Closeable {
    private static final int DATA_ALIGNMENT = 64;
    private static final int WRITE_SLICE = 4 << 20;

    /** Told after each tensor reaches the file. */
    public interface Listener {
        void written(String tensorName, long tensorBytes, long fileBytes);
    }

    /** Null for {@link #layoutOnly}. */
    private final FileChannel channel;
    private final String location;
    private final Listener listener;
    private long end;

    /**
     * @param file     the data file, created or truncated
     * @param location the name the model's tensors record for it, relative to the model file
     */
    public ExternalDataWriter(Path file, String location, Listener listener) throws IOException {
        this.channel = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                StandardOpenOption.TRUNCATE_EXISTING);
        this.location = location;
        this.listener = listener;
    }

    private ExternalDataWriter(String location) {
        this.channel = null;
        this.location = location;
        this.listener = null;
    }

    /**
     * A writer that lays streamed tensors out (offsets and references, as a real one would) without
     * making or writing their bytes, and keeps tensors handed over whole inline: it builds a graph
     * whose structure and small constants can be compared with a model on disk, for nothing.
     */
    public static ExternalDataWriter layoutOnly(String location) {
        return new ExternalDataWriter(location);
    }

    /** Where a tensor's bytes go, piece by piece: in order, or each at its place. */
    public interface ByteSink {
        /** The next bytes after the last ones written in order. */
        void write(ByteBuffer bytes);

        /**
         * Bytes at {@code tensorOffset} within the tensor, for a tensor made out of order (a
         * transposed matrix written band by band); every byte is written once.
         */
        default void writeAt(long tensorOffset, ByteBuffer bytes) {
            throw new UnsupportedOperationException("this sink takes bytes in order only");
        }
    }

    /** Makes a tensor's bytes, handing them to the sink piece by piece. */
    public interface TensorBytes {
        void writeTo(ByteSink sink);
    }

    /** The data file's size so far. */
    public long bytesWritten() {
        return end;
    }

    /** The tensor as the graph should hold it: moved to the data file when large, unchanged when small. */
    public TensorProto add(TensorProto tensor) {
        if (ExternalData.isExternal(tensor)) {
            throw new IllegalArgumentException("tensor '" + tensor.getName() + "' is external; use copy()");
        }
        if (channel == null || tensor.getRawData().size() < OnnxModelIO.EXTERNAL_TENSOR_MIN_BYTES) {
            return tensor;
        }
        ByteBuffer bytes = tensor.getRawData().asReadOnlyByteBuffer();
        return add(tensor.toBuilder().clearRawData().build(), bytes.remaining(), sink -> sink.write(bytes));
    }

    /**
     * A tensor whose {@code length} bytes are made while they are written, so that they never need
     * to be in memory together: {@code header} has the name, type and dims, and no data.
     */
    public TensorProto add(TensorProto header, long length, TensorBytes bytes) {
        long offset = align();
        if (channel == null) {
            return referTo(header, offset, length);
        }
        long[] next = {offset};
        long[] written = {0};
        bytes.writeTo(new ByteSink() {
            @Override
            public void write(ByteBuffer piece) {
                written[0] += piece.remaining();
                next[0] = put(header, piece, next[0]);
            }

            @Override
            public void writeAt(long tensorOffset, ByteBuffer piece) {
                if (tensorOffset < 0 || tensorOffset + piece.remaining() > length) {
                    throw new IllegalStateException("tensor '" + header.getName() + "': bytes " + tensorOffset + ".."
                            + (tensorOffset + piece.remaining()) + " are outside its " + length);
                }
                written[0] += piece.remaining();
                put(header, piece, offset + tensorOffset);
            }
        });
        if (written[0] != length) {
            throw new IllegalStateException("tensor '" + header.getName() + "' wrote " + written[0]
                    + " bytes, not " + length);
        }
        return referTo(header, offset, length);
    }

    /** Writes the piece at file position {@code at}; returns the position after it. */
    private long put(TensorProto header, ByteBuffer piece, long at) {
        try {
            // in slices: the JDK copies a heap buffer through a temporary direct buffer of the same size
            while (piece.hasRemaining()) {
                ByteBuffer slice = piece.duplicate();
                slice.limit(Math.min(piece.limit(), piece.position() + WRITE_SLICE));
                int n = channel.write(slice, at);
                piece.position(piece.position() + n);
                at += n;
            }
            return at;
        } catch (IOException e) {
            throw new BadInputException("cannot write tensor '" + header.getName() + "' to " + location + ": "
                    + e.getMessage(), e);
        }
    }

    /** An external tensor of another model, its bytes copied file to file without passing through the heap. */
    public TensorProto copy(TensorProto tensor, Path sourceBaseDir) {
        if (channel == null) {
            throw new IllegalStateException("a layout-only writer copies nothing");
        }
        ExternalData ext = ExternalData.of(tensor);
        Path source = sourceBaseDir.resolve(ext.location()).normalize();
        long offset = align();
        try (FileChannel in = FileChannel.open(source, StandardOpenOption.READ)) {
            long length = ext.length() >= 0 ? ext.length() : in.size() - ext.offset();
            if (ext.offset() + length > in.size()) {
                throw new BadInputException("external data for '" + tensor.getName() + "' runs past the end of "
                        + source + " (offset " + ext.offset() + " + length " + length + " > " + in.size() + " bytes)");
            }
            long done = 0;
            while (done < length) {
                long n = in.transferTo(ext.offset() + done, length - done, channel.position(offset + done));
                if (n <= 0) {
                    throw new BadInputException("external data file " + source + " ended early");
                }
                done += n;
            }
            return referTo(tensor.toBuilder().clearExternalData().build(), offset, length);
        } catch (IOException e) {
            throw new BadInputException("cannot copy external data of '" + tensor.getName() + "' from " + source
                    + ": " + e.getMessage(), e);
        }
    }

    /** Flushes the data to the disk; a model is renamed into place only after this. */
    public void force() throws IOException {
        if (channel != null) {
            channel.force(true);
        }
    }

    @Override
    public void close() throws IOException {
        if (channel != null) {
            channel.close();
        }
    }

    private long align() {
        end = (end + DATA_ALIGNMENT - 1) / DATA_ALIGNMENT * DATA_ALIGNMENT;
        return end;
    }

    private TensorProto referTo(TensorProto tensor, long offset, long length) {
        end = offset + length;
        if (listener != null) {
            listener.written(tensor.getName(), length, end);
        }
        return tensor.toBuilder()
                .clearRawData()
                .setDataLocation(TensorProto.DataLocation.EXTERNAL)
                .addExternalData(entry("location", location))
                .addExternalData(entry("offset", Long.toString(offset)))
                .addExternalData(entry("length", Long.toString(length)))
                .build();
    }

    private static StringStringEntryProto entry(String key, String value) {
        return StringStringEntryProto.newBuilder().setKey(key).setValue(value).build();
    }
}
