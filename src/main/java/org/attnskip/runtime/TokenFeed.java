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
        return put(feed, scratch, inputIds.length, inputIds[0].length, attentionMask[0].length,
                (b, i) -> inputIds[b][i], (b, i) -> attentionMask[b][i], (b, i) -> positionIds[b][i],
                inputIds, attentionMask, positionIds);
    }

    /** One sequence's next tokens after {@code past} positions: a mask of ones and positions counting on. */
    List<OnnxTensor> putAppended(Map<String, OnnxTensor> feed, int[] tokens, long past, InputScratch scratch)
            throws OrtException {
        return put(feed, scratch, 1, tokens.length, Math.toIntExact(past + tokens.length),
                (b, i) -> tokens[i], (b, i) -> 1, (b, i) -> past + i, null, null, null);
    }

    /** The value of row b, column i of an integer input. */
    private interface Cells {
        long at(int b, int i);
    }

    private List<OnnxTensor> put(Map<String, OnnxTensor> feed, InputScratch scratch, int batch, int seq, int total,
                                 Cells ids, Cells mask, Cells positions, long[][]... rows) throws OrtException {
        for (long[][] r : rows) {
            checkRectangular(r);
        }
        List<OnnxTensor> made = new ArrayList<>(3);
        try {
            made.add(put(feed, this.ids, integers(batch, seq, ids, idType, scratch, 0)));
            if (this.mask != null) {
                made.add(put(feed, this.mask, integers(batch, total, mask, maskType, scratch, 1)));
            }
            if (this.positions != null) {
                made.add(put(feed, this.positions, integers(batch, seq, positions, positionType, scratch, 2)));
            }
            return made;
        } catch (OrtException | RuntimeException e) {
            made.forEach(OnnxTensor::close);
            throw e;
        }
    }

    private static void checkRectangular(long[][] rows) {
        if (rows == null) {
            return;
        }
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
     * A [b, s] int64 tensor, or int32 where the graph declares that (ORT GenAI's masks), written
     * into the sequence's scratch buffer {@code index} when it has one.
     */
    private OnnxTensor integers(int b, int s, Cells cells, OnnxJavaType type, InputScratch scratch, int index)
            throws OrtException {
        int bytes = (type == OnnxJavaType.INT32 ? 4 : 8) * b * s;
        ByteBuffer memory = scratch != null ? scratch.take(index, bytes)
                : ByteBuffer.allocateDirect(bytes).order(ByteOrder.nativeOrder());
        if (type == OnnxJavaType.INT32) {
            IntBuffer buf = memory.asIntBuffer();
            for (int r = 0; r < b; r++) {
                for (int i = 0; i < s; i++) {
                    buf.put(Math.toIntExact(cells.at(r, i)));
                }
            }
            buf.rewind();
            return OnnxTensor.createTensor(env, buf, new long[] {b, s});
        }
        LongBuffer buf = memory.asLongBuffer();
        for (int r = 0; r < b; r++) {
            for (int i = 0; i < s; i++) {
                buf.put(cells.at(r, i));
            }
        }
        buf.rewind();
        return OnnxTensor.createTensor(env, buf, new long[] {b, s});
    }
}
