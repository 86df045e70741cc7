package org.attnskip.export;

import org.attnskip.onnx.BadInputException;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * Reads llama2.c checkpoints (the formats written by llama2.c's export.py), all little-endian:
 * <ul>
 *   <li><b>legacy v0</b>, fp32: a header of 7 int32 (dim, hidden_dim, n_layers, n_heads, n_kv_heads,
 *       vocab_size, seq_len), where a negative vocab_size means the classifier is NOT shared with the
 *       embedding. Then token_embedding, rms_att[L], wq[L], wk[L], wv[L], wo[L], rms_ffn[L], w1[L],
 *       w2[L], w3[L], rms_final, the obsolete freq_cis_real and freq_cis_imag tables
 *       ([seq_len][head_size/2] each, skipped), then wcls when not shared.</li>
 *   <li><b>v1</b>, fp32: a 256-byte header: uint32 magic 0x616b3432 ("ak42"), int32 version 1, the
 *       7 int32 above (vocab_size positive), a byte shared_classifier, zero padding. Then rms_att[L],
 *       rms_ffn[L], rms_final, token_embedding, wq[L], wk[L], wv[L], wo[L], w1[L], w2[L], w3[L], and
 *       wcls when not shared.</li>
 *   <li><b>v2</b>, Q8_0: the v1 header with version 2 and an int32 group size right after the
 *       shared byte (offset 37). Then the norms in fp32 as in v1, then each of token_embedding,
 *       wq[L], wk[L], wv[L], wo[L], w1[L], w2[L], w3[L] (and wcls when not shared) as its int8 values
 *       followed by its fp32 scales, one per group of consecutive values. Weights are dequantised
 *       here: value = q * scale.</li>
 * </ul>
 * The header is validated and the file size checked against it before any weight is allocated.
 */
public final class Llama2cCheckpoint {
    public static final int MAGIC = 0x616b3432;
    static final int LEGACY_HEADER_BYTES = 7 * Integer.BYTES;
    static final int VERSIONED_HEADER_BYTES = 256;
    /** The largest float[] we are willing to allocate for one tensor. */
    static final long MAX_ARRAY = Integer.MAX_VALUE - 16;

    private Llama2cCheckpoint() {
    }

    /** The seven architecture fields every llama2.c format stores, plus what the format says about the classifier. */
    record Header(int version, int dim, int hiddenDim, int layers, int heads, int kvHeads, int vocabSize, int seqLen,
                  boolean sharedClassifier, int groupSize) {

        int headSize() {
            return dim / heads;
        }

        int kvDim() {
            return kvHeads * headSize();
        }

        /** Why these numbers cannot describe a Llama model, or null when they can. */
        String problem() {
            if (dim <= 0 || hiddenDim <= 0 || layers <= 0 || heads <= 0 || kvHeads <= 0 || vocabSize <= 0 || seqLen <= 0) {
                return "sizes must be positive";
            }
            if (dim % heads != 0) {
                return "dim " + dim + " is not divisible by n_heads " + heads;
            }
            if ((dim / heads) % 2 != 0) {
                return "head size " + dim / heads + " is odd, rotary embedding needs pairs";
            }
            if (kvHeads > heads || heads % kvHeads != 0) {
                return "n_heads " + heads + " is not a multiple of n_kv_heads " + kvHeads;
            }
            if ((long) vocabSize * dim > MAX_ARRAY || (long) hiddenDim * dim > MAX_ARRAY || (long) dim * dim > MAX_ARRAY) {
                return "a tensor has more than " + MAX_ARRAY + " values";
            }
            if (version == 2) {
                if (groupSize <= 0) {
                    return "group size " + groupSize + " must be positive";
                }
                for (long n : quantisedTensorSizes()) {
                    if (n % groupSize != 0) {
                        return "a tensor of " + n + " values is not a multiple of group size " + groupSize;
                    }
                }
            }
            try {
                expectedFileSize();
            } catch (ArithmeticException e) {
                return "the sizes overflow a 64-bit byte count";
            }
            return null;
        }

        private long[] quantisedTensorSizes() {
            return new long[]{(long) vocabSize * dim, (long) dim * dim, (long) kvDim() * dim, (long) hiddenDim * dim};
        }

        /** The exact file size this header implies; ArithmeticException when it does not fit in a long. */
        long expectedFileSize() {
            long d = dim, h = hiddenDim, l = layers, v = vocabSize, kv = kvDim();
            long norms = Math.addExact(Math.multiplyExact(l, d * 2), d);
            long perLayer = d * d * 2 + kv * d * 2 + h * d * 3;
            long matrices = Math.addExact(v * d, Math.multiplyExact(l, perLayer));
            long quantised = Math.addExact(matrices, sharedClassifier ? 0 : v * d);
            long values = Math.addExact(norms, quantised);
            return switch (version) {
                // the legacy format also stores two [seq_len][head_size/2] rotary tables
                case 0 -> Math.addExact(LEGACY_HEADER_BYTES, Math.multiplyExact(4L,
                        Math.addExact(values, (long) seqLen * headSize())));
                case 1 -> Math.addExact(VERSIONED_HEADER_BYTES, Math.multiplyExact(4L, values));
                // int8 values plus one fp32 scale per group of each quantised tensor
                default -> Math.addExact(Math.addExact(VERSIONED_HEADER_BYTES, Math.multiplyExact(4L, norms)),
                        Math.addExact(quantised, Math.multiplyExact(4L, quantised / groupSize)));
            };
        }

        String describe() {
            return "dim=" + dim + " hidden_dim=" + hiddenDim + " n_layers=" + layers + " n_heads=" + heads
                    + " n_kv_heads=" + kvHeads + " vocab_size=" + vocabSize + " seq_len=" + seqLen;
        }

        LlamaConfig config() {
            return new LlamaConfig(dim, hiddenDim, layers, heads, kvHeads, vocabSize, seqLen,
                    1e-5f, 10000f, null, sharedClassifier, false, 1, 2);
        }
    }

    /** Reads a llama2.c checkpoint of any version into fp32 weights. */
    public static LlamaWeights read(Path bin) {
        return LlamaWeights.load(open(bin));
    }

    /**
     * Opens a llama2.c checkpoint after checking its header and size; each tensor is read (and Q8_0
     * dequantised) when asked for, in bounded chunks. Close it when done.
     */
    public static LlamaWeightSource open(Path bin) {
        FileChannel channel = null;
        try {
            channel = FileChannel.open(bin, StandardOpenOption.READ);
            long size = channel.size();
            Header header = readHeader(bin, channel, size);
            long expected = header.expectedFileSize();
            if (size < expected) {
                throw new BadInputException(bin + ": truncated llama2.c checkpoint (v" + header.version() + ", "
                        + header.describe() + "): expected " + expected + " bytes, the file has " + size);
            }
            if (size > expected) {
                throw new BadInputException(bin + ": " + (size - expected) + " unexpected bytes after the weights of a llama2.c v"
                        + header.version() + " checkpoint (" + header.describe() + "); is this a llama2.c checkpoint?");
            }
            Llama2cSource source = new Llama2cSource(bin, channel, header);
            channel = null;
            return source;
        } catch (NoSuchFileException e) {
            throw new BadInputException("checkpoint not found: " + bin);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + bin, e);
        } finally {
            if (channel != null) {
                try {
                    channel.close();
                } catch (IOException ignored) {
                    // the failure being reported matters more
                }
            }
        }
    }

    static Header readHeader(Path bin, FileChannel channel, long size) throws IOException {
        if (size < LEGACY_HEADER_BYTES) {
            throw new BadInputException(bin + ": truncated llama2.c checkpoint: " + size + " bytes, too short for a header");
        }
        ByteBuffer first = readAt(channel, 0, (int) Math.min(size, VERSIONED_HEADER_BYTES));
        int magic = first.getInt(0);
        if (magic != MAGIC) {
            Header legacy = new Header(0, first.getInt(0), first.getInt(4), first.getInt(8), first.getInt(12),
                    first.getInt(16), Math.abs(first.getInt(20)), first.getInt(24), first.getInt(20) > 0, 0);
            String problem = first.getInt(20) == Integer.MIN_VALUE ? "vocab_size overflows" : legacy.problem();
            if (problem != null) {
                throw new BadInputException(bin + ": not a llama2.c checkpoint: no 'ak42' magic, and as a legacy v0 header ("
                        + legacy.describe() + ") " + problem);
            }
            return legacy;
        }
        if (size < VERSIONED_HEADER_BYTES) {
            throw new BadInputException(bin + ": truncated llama2.c checkpoint: " + size + " bytes, shorter than the 256-byte header");
        }
        int version = first.getInt(4);
        if (version != 1 && version != 2) {
            throw new BadInputException(bin + ": unsupported llama2.c checkpoint version " + version
                    + " (supported: legacy v0, 1 = fp32, 2 = Q8_0)");
        }
        int groupSize = version == 2 ? first.getInt(37) : 0;
        Header header = new Header(version, first.getInt(8), first.getInt(12), first.getInt(16), first.getInt(20),
                first.getInt(24), first.getInt(28), first.getInt(32), first.get(36) != 0, groupSize);
        String problem = header.problem();
        if (problem != null) {
            throw new BadInputException(bin + ": bad llama2.c v" + version + " header (" + header.describe()
                    + (version == 2 ? " group_size=" + groupSize : "") + "): " + problem);
        }
        return header;
    }

    static ByteBuffer readAt(FileChannel channel, long position, int length) throws IOException {
        ByteBuffer buffer = ByteBuffer.allocate(length).order(ByteOrder.LITTLE_ENDIAN);
        while (buffer.hasRemaining()) {
            if (channel.read(buffer, position + buffer.position()) < 0) {
                throw new BadInputException("unexpected end of file at byte " + (position + buffer.position()));
            }
        }
        return buffer.flip();
    }
}
