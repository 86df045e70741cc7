package org.attnskip.export;

import org.attnskip.onnx.BadInputException;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * What a streamed export of a shape needs, worked out from its config before anything is read or
 * written: the bytes of {@code model.onnx.data}, and the Java heap of the largest moment. Tensors
 * pass through row blocks of a few megabytes and transposed ones through a band tile of at most
 * 32 MB (see {@link WeightEncoder}), so the heap needed hardly grows with the model. A request that
 * cannot fit is refused with the numbers instead of failing halfway.
 */
public record ExportBudget(long dataBytes, long heapBytes) {
    /** The graph proto, the JVM's own data and what the estimate leaves out. */
    static final long SLACK_BYTES = 128L << 20;

    public static ExportBudget of(LlamaConfig c, ExportDtype dtype) {
        RotaryTables.checkSize(c);
        try {
            return estimate(c, dtype);
        } catch (ArithmeticException e) {
            throw new BadInputException("the model's byte count overflows 64 bits: " + c);
        }
    }

    private static ExportBudget estimate(LlamaConfig c, ExportDtype dtype) {
        long d = c.dim();
        long kv = c.kvDim();
        long hid = c.hiddenDim();
        long embedding = c.vocabSize() * d;
        long perLayer = 2 * d + 2 * d * d + 2 * kv * d + 3 * hid * d + (c.qkvBias() ? d + 2 * kv : 0);
        long rotary = 2L * c.seqLen() * (c.headDim() / 2);
        int tensors = 2 + 9 * c.layers() + 2 + (c.sharedClassifier() ? 0 : 1);
        long values = Math.addExact(Math.multiplyExact(c.layers(), perLayer),
                embedding * (c.sharedClassifier() ? 1 : 2) + d + rotary);
        int size = dtype == ExportDtype.FLOAT16 ? 2 : 4;
        long data = Math.addExact(Math.multiplyExact(values, size), 64L * tensors);

        long heap = Math.max(WeightEncoder.heapBytes(hid, d, dtype, true), WeightEncoder.heapBytes(d, hid, dtype, true));
        heap = Math.max(heap, WeightEncoder.heapBytes(d + 2 * kv, d, dtype, true)); // the fused graph's packed q|k|v
        heap = Math.max(heap, WeightEncoder.heapBytes(c.vocabSize(), d, dtype, !c.sharedClassifier()));
        return new ExportBudget(data, heap + SLACK_BYTES);
    }

    /**
     * Refuses, with one line saying how much is needed, when this JVM's heap cannot take the
     * largest step of a streamed export.
     */
    public void checkHeap(long maxHeap) {
        if (heapBytes > maxHeap) {
            throw new BadInputException("this export needs about " + gb(heapBytes) + " of Java heap and the JVM has "
                    + gb(maxHeap) + "; raise it with ATTNSKIP_JAVA_OPTS=-Xmx" + (heapBytes / (1L << 30) + 1) + "g");
        }
    }

    /**
     * Refuses, with one line giving the bytes needed, when the file system where {@code output}
     * will be written has too little free space.
     *
     * @param otherFileBytes the other files the output holds (tokenizer), counted towards the disk
     */
    public void checkDisk(Path output, long otherFileBytes) {
        Path existing = output.toAbsolutePath().normalize();
        while (existing != null && !Files.exists(existing)) {
            existing = existing.getParent();
        }
        if (existing == null) {
            return;
        }
        long need = dataBytes + otherFileBytes + SLACK_BYTES / 16;
        try {
            long free = Files.getFileStore(existing).getUsableSpace();
            if (need > free) {
                throw new BadInputException("not enough disk space for " + output + ": the export needs " + need
                        + " bytes (" + gb(need) + "), " + existing + " has " + free + " bytes free");
            }
        } catch (IOException e) {
            throw new BadInputException("cannot check the free space at " + existing + ": " + e.getMessage(), e);
        }
    }

    static String gb(long bytes) {
        return String.format("%.2f GB", bytes / (double) (1L << 30));
    }
}
