package org.attnskip.runtime;

import ai.onnxruntime.OnnxJavaType;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import ai.onnxruntime.TensorInfo;
import org.attnskip.onnx.BadInputException;
import org.attnskip.onnx.Half;

import java.nio.ByteBuffer;
import java.nio.FloatBuffer;
import java.nio.ShortBuffer;
import java.util.Arrays;

/**
 * The graph's logits output [batch, seq, vocab]: its vocabulary, the token ids it can take, and
 * reading it either from a run's result or from a buffer of ours that a decode step wrote it into.
 */
final class LogitsOutput {
    /** The sequence's scratch buffer that pinned logits are written into (0-2: ids, mask, positions). */
    private static final int SCRATCH = 3;

    private final String name;
    private final int vocabSize;
    /** FLOAT or FLOAT16 when a run can write the logits into a buffer of ours (vocab fixed); else null. */
    private final OnnxJavaType pinnableType;

    LogitsOutput(String name, TensorInfo info) {
        this.name = name;
        long[] shape = info.getShape();
        vocabSize = shape.length == 3 && shape[2] > 0 ? (int) shape[2] : -1;
        pinnableType = vocabSize > 0 && (info.type == OnnxJavaType.FLOAT || info.type == OnnxJavaType.FLOAT16)
                ? info.type : null;
    }

    String name() {
        return name;
    }

    /** The declared vocabulary, or -1 when the graph leaves it open. */
    int vocabSize() {
        return vocabSize;
    }

    /** A clear error instead of ONNX Runtime's "index out of range" from deep inside the embedding. */
    void checkIds(long[][] inputIds) {
        for (long[] row : inputIds) {
            for (long id : row) {
                checkId(id);
            }
        }
    }

    /** As above for one sequence's ids. */
    void checkIds(int[] ids) {
        for (int id : ids) {
            checkId(id);
        }
    }

    private void checkId(long id) {
        if (vocabSize > 0 && (id < 0 || id >= vocabSize)) {
            throw new BadInputException("token id " + id + " is outside the model's vocabulary of " + vocabSize
                    + " (is the tokenizer the model's own?)");
        }
    }

    /**
     * A [batch, 1, vocab] tensor over the sequence's reused buffer, for a one-position run to write,
     * with the float view that reads fp32 logits (null for fp16; made once: a view per step was a few
     * allocations that run interpreted for most of a short generation).
     */
    record Pinned(OnnxTensor tensor, ByteBuffer memory, FloatBuffer floats, int batch) {
    }

    /**
     * The buffer a decode step of {@code batch} rows writes its logits into, kept by the sequence's
     * scratch for its next steps (which close it); null when they cannot be bound.
     */
    Pinned pinForStep(OrtEnvironment env, InputScratch scratch, int batch) throws OrtException {
        long bytes = (long) batch * vocabSize * (pinnableType == OnnxJavaType.FLOAT16 ? 2 : 4);
        if (pinnableType == null || bytes > Integer.MAX_VALUE) {
            return null;
        }
        Pinned kept = scratch.pinned();
        if (kept != null && kept.batch() == batch) {
            return kept;
        }
        ByteBuffer memory = scratch.take(SCRATCH, (int) bytes);
        Pinned made = new Pinned(OnnxTensor.createTensor(env, memory, new long[] {batch, 1, vocabSize}, pinnableType), memory,
                pinnableType == OnnxJavaType.FLOAT ? memory.asFloatBuffer() : null, batch);
        scratch.keepPinned(made);
        return made;
    }

    /** What a run wrote into the pinned buffer. */
    Logits read(Pinned pinned) {
        float[] values = new float[pinned.batch() * vocabSize];
        if (pinnableType == OnnxJavaType.FLOAT16) {
            ShortBuffer half = pinned.memory().asShortBuffer();
            for (int i = 0; i < values.length; i++) {
                values[i] = Half.toFloat(half.get(i));
            }
        } else {
            pinned.floats().get(0, values);
        }
        return new Logits(values, pinned.batch(), 1, vocabSize);
    }

    /** The logits a run returned. */
    Logits read(OrtSession.Result result) throws OrtException {
        OnnxTensor t = (OnnxTensor) result.get(name).orElseThrow();
        long[] shape = t.getInfo().getShape();
        if (shape.length != 3) {
            throw new BadInputException("logits must be [batch, seq, vocab]; they are " + Arrays.toString(shape));
        }
        return new Logits(FloatOutputs.values(t), (int) shape[0], (int) shape[1], (int) shape[2]);
    }
}
