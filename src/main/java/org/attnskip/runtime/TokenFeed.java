package org.attnskip.runtime;

import ai.onnxruntime.NodeInfo;
import ai.onnxruntime.OnnxJavaType;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.TensorInfo;
import org.attnskip.onnx.BadInputException;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.IntBuffer;
import java.nio.LongBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * The one place where a run's token-side rows become input tensors: token ids, and the attention
 * mask and position ids where the graph takes them, each int64 or int32 as the graph declares it.
 * Inputs that a graph derives from these (GroupQueryAttention's seqlens_k from the mask) need nothing here.
 */
final class TokenFeed {
    private final OrtEnvironment env;
    private final String ids;
    private final String mask;
    private final String positions;
    private final OnnxJavaType idType;
    private final OnnxJavaType maskType;
    private final OnnxJavaType positionType;
    private final long[] idShape;

    TokenFeed(OrtEnvironment env, DecoderIo io, Map<String, NodeInfo> inputs) {
        this.env = env;
        this.ids = io.inputIds();
        this.mask = io.attentionMask() != null && inputs.containsKey(io.attentionMask()) ? io.attentionMask() : null;
        this.positions = io.positionIds() != null && inputs.containsKey(io.positionIds()) ? io.positionIds() : null;
        TensorInfo idInfo = tensorInfo(inputs.get(ids));
        this.idType = idInfo.type;
        this.idShape = idInfo.getShape();
        this.maskType = mask != null ? tensorInfo(inputs.get(mask)).type : null;
        this.positionType = positions != null ? tensorInfo(inputs.get(positions)).type : null;
    }

    static TensorInfo tensorInfo(NodeInfo node) {
        if (!(node.getInfo() instanceof TensorInfo t)) {
            throw new BadInputException("graph input/output '" + node.getName() + "' is not a tensor");
        }
        return t;
    }

    boolean hasMask() {
        return mask != null;
    }

    boolean hasPositions() {
        return positions != null;
    }

    /** Whether input_ids is [batch, seq] with an open batch dimension. */
    boolean openBatch() {
        return idShape.length == 2 && idShape[0] < 0;
    }

    /**
     * Puts ids [batch][seq], mask [batch][past+seq] and positions [batch][seq] into {@code feed}
     * (the latter two only where the graph takes them), written into the sequence's scratch buffers
     * when it has some. Returns the tensors made, which the caller closes after the run.
     */
    List<OnnxTensor> put(Map<String, OnnxTensor> feed, long[][] inputIds, long[][] attentionMask, long[][] positionIds,
                         InputScratch scratch) throws OrtException {
        int batch = inputIds.length;
        return put(feed, scratch, batch, inputIds[0].length, attentionMask[0].length,
                () -> flat(inputIds), () -> flat(attentionMask), () -> flat(positionIds));
    }

    /** One sequence's next tokens after {@code past} positions: a mask of ones and positions counting on. */
    List<OnnxTensor> putAppended(Map<String, OnnxTensor> feed, int[] tokens, long past, InputScratch scratch)
            throws OrtException {
        return putAppended(feed, tokens, past, scratch, 0);
    }

    /**
     * As above; a decode step with {@code stepMaskWidth} > 0 gets a mask of that width (up to the
     * cache's capacity), ones then zeros: for graphs that read the mask only as each row's length.
     */
    List<OnnxTensor> putAppended(Map<String, OnnxTensor> feed, int[] tokens, long past, InputScratch scratch,
                                 int stepMaskWidth) throws OrtException {
        int total = Math.toIntExact(past + tokens.length);
        if (scratch != null && tokens.length == 1) {
            return putStep(feed, tokens[0], past, total, stepMaskWidth, scratch);
        }
        return put(feed, scratch, 1, tokens.length, total, () -> {
            long[] ids = new long[tokens.length];
            for (int i = 0; i < ids.length; i++) {
                ids[i] = tokens[i];
            }
            return ids;
        }, () -> ones(total), () -> {
            long[] positions = new long[tokens.length];
            for (int i = 0; i < positions.length; i++) {
                positions[i] = past + i;
            }
            return positions;
        });
    }

    /**
     * A decode step of one sequence: its [1, 1] ids and positions tensors are the sequence's, made at
     * its first step and rewritten in place; its mask is a view of the sequence's ones. The methods a
     * step calls once stay interpreted for the whole of a 256-token generation in a fresh JVM
     * (docs/BENCHMARKS.md, "Where a decode step's time goes"), where each tensor and buffer object a
     * step makes costs microseconds. Returns the tensors the caller closes after the run: the mask,
     * unless it is the sequence's fixed-width one.
     */
    private List<OnnxTensor> putStep(Map<String, OnnxTensor> feed, int token, long past, int total, int maskWidth,
                                     InputScratch scratch) throws OrtException {
        StepInputs step = scratch.stepInputs();
        if (step == null) {
            step = new StepInputs(env, idType, positions != null ? positionType : null, maskType);
            scratch.keepStepInputs(step);
        }
        feed.put(ids, step.ids(token));
        if (positions != null) {
            feed.put(positions, step.positions(past));
        }
        if (mask == null) {
            return List.of();
        }
        if (maskWidth > 0) {
            feed.put(mask, step.fixedWidthMask(total, maskWidth));
            return List.of();
        }
        return List.of(put(feed, mask, step.mask(total)));
    }

    /**
     * The values of one integer input, row after row (at least batch * width of them): made only for
     * the inputs the graph takes.
     */
    private interface Values {
        long[] get();
    }

    /**
     * At least {@code n} ones, from an array kept for the next run: a decode step's mask is the
     * longest input it writes, and building it anew (or one value at a time) cost more than the rest
     * of the step's Java side while the JIT had not compiled it yet.
     */
    private long[] ones(int n) {
        long[] kept = ones;
        if (kept.length < n) {
            kept = new long[Math.max(n, 2 * kept.length)];
            java.util.Arrays.fill(kept, 1L);
            ones = kept; // volatile: a session's runs may come from several threads (serve)
        }
        return kept;
    }

    private volatile long[] ones = new long[0];

    private static long[] flat(long[][] rows) {
        checkRectangular(rows);
        int width = rows[0].length;
        long[] all = new long[rows.length * width];
        for (int r = 0; r < rows.length; r++) {
            System.arraycopy(rows[r], 0, all, r * width, width);
        }
        return all;
    }

    private List<OnnxTensor> put(Map<String, OnnxTensor> feed, InputScratch scratch, int batch, int seq, int total,
                                 Values ids, Values mask, Values positions) throws OrtException {
        List<OnnxTensor> made = new ArrayList<>(3);
        try {
            made.add(put(feed, this.ids, integers(batch, seq, ids.get(), idType, scratch, 0)));
            if (this.mask != null) {
                made.add(put(feed, this.mask, integers(batch, total, mask.get(), maskType, scratch, 1)));
            }
            if (this.positions != null) {
                made.add(put(feed, this.positions, integers(batch, seq, positions.get(), positionType, scratch, 2)));
            }
            return made;
        } catch (OrtException | RuntimeException e) {
            made.forEach(OnnxTensor::close);
            throw e;
        }
    }

    private static void checkRectangular(long[][] rows) {
        for (long[] row : rows) {
            if (row.length != rows[0].length) {
                throw new IllegalArgumentException("ragged batch: rows of length " + rows[0].length + " and " + row.length);
            }
        }
    }

    private static OnnxTensor put(Map<String, OnnxTensor> feed, String name, OnnxTensor t) {
        feed.put(name, t);
        return t;
    }

    /**
     * A [b, s] int64 tensor of the first b * s {@code values}, or int32 where the graph declares that
     * (ORT GenAI's masks), written into the sequence's scratch buffer {@code index} when it has one.
     */
    private OnnxTensor integers(int b, int s, long[] values, OnnxJavaType type, InputScratch scratch, int index)
            throws OrtException {
        int n = b * s;
        int bytes = (type == OnnxJavaType.INT32 ? 4 : 8) * n;
        ByteBuffer memory = scratch != null ? scratch.take(index, bytes)
                : ByteBuffer.allocateDirect(bytes).order(ByteOrder.nativeOrder());
        if (type == OnnxJavaType.INT32) {
            IntBuffer buf = memory.asIntBuffer();
            for (int i = 0; i < n; i++) {
                buf.put(Math.toIntExact(values[i]));
            }
            buf.rewind();
            return OnnxTensor.createTensor(env, buf, new long[] {b, s});
        }
        LongBuffer buf = memory.asLongBuffer();
        buf.put(values, 0, n).rewind(); // one bulk copy, not a call per value
        return OnnxTensor.createTensor(env, buf, new long[] {b, s});
    }
}
