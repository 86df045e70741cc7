package org.attnskip.runtime;

import ai.onnxruntime.NodeInfo;
import ai.onnxruntime.OnnxJavaType;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.TensorInfo;
import org.attnskip.layout.StaticCache;
import org.attnskip.onnx.BadInputException;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * What a static-cache graph (ONNX opset 24, {@link StaticCache}) needs besides the tokens: where
 * each row's new K/V go in the fixed buffers ({@code write_indices}, the positions already cached)
 * and how many positions the attention reads ({@code nonpad_kv_seqlen}, cached plus new). The
 * buffers themselves are the session's in-place cache, kept across runs.
 */
final class StaticCacheFeeds {
    private final OrtEnvironment env;
    private final String writeIndices;
    private final String nonpadKvSeqlen;
    private final OnnxJavaType writeType;
    private final OnnxJavaType nonpadType;

    private StaticCacheFeeds(OrtEnvironment env, String writeIndices, String nonpadKvSeqlen, OnnxJavaType writeType,
                             OnnxJavaType nonpadType) {
        this.env = env;
        this.writeIndices = writeIndices;
        this.nonpadKvSeqlen = nonpadKvSeqlen;
        this.writeType = writeType;
        this.nonpadType = nonpadType;
    }

    /** The feeds for the graph's static cache, or null when its caches are not static. */
    static StaticCacheFeeds of(OrtEnvironment env, StaticCache cache, Map<String, NodeInfo> inputs) {
        if (cache == null) {
            return null;
        }
        if (cache.writeIndices() == null) {
            throw new BadInputException("the static cache's TensorScatter has no write_indices input: every run would"
                    + " overwrite position 0");
        }
        return new StaticCacheFeeds(env, cache.writeIndices(), cache.nonpadKvSeqlen(), type(inputs, cache.writeIndices()),
                cache.nonpadKvSeqlen() == null ? null : type(inputs, cache.nonpadKvSeqlen()));
    }

    private static OnnxJavaType type(Map<String, NodeInfo> inputs, String name) {
        NodeInfo n = inputs.get(name);
        if (n == null || !(n.getInfo() instanceof TensorInfo t)
                || (t.type != OnnxJavaType.INT64 && t.type != OnnxJavaType.INT32)) {
            throw new BadInputException("the static cache's input '" + name + "' is not an int32/int64 graph input");
        }
        return t.type;
    }

    /**
     * Whether the attention reads only each row's own positions ({@code nonpad_kv_seqlen}), so that
     * rows of different lengths can share a run padded on the right.
     */
    boolean readsRowLengths() {
        return nonpadKvSeqlen != null;
    }

    /**
     * Each row's cached positions as a right-padded mask [batch][past+seq] gives them: its ones
     * count its cached and new positions, wherever the padding sits (GroupQueryAttention's reading,
     * seqlens_k = ones - 1, which {@link KvBatch.Padding#RIGHT} feeds). A row without padding counts past.
     */
    static long[] cachedPerRow(long[][] attentionMask, int seq) {
        long[] cached = new long[attentionMask.length];
        for (int b = 0; b < cached.length; b++) {
            long ones = 0;
            for (long m : attentionMask[b]) {
                ones += m != 0 ? 1 : 0;
            }
            if (ones < seq) {
                throw new IllegalArgumentException("row " + b + " of the attention mask has " + ones
                        + " ones for " + seq + " new positions");
            }
            cached[b] = ones - seq;
        }
        return cached;
    }

    /**
     * Puts both inputs for a run of {@code seq} positions after each row's {@code cached} ones
     * (write_indices, and nonpad_kv_seqlen = cached + seq); returns the tensors made.
     */
    List<OnnxTensor> put(Map<String, OnnxTensor> feed, long[] cached, int seq) throws OrtException {
        List<OnnxTensor> made = new ArrayList<>(2);
        made.add(tensor(writeType, cached, 0));
        feed.put(writeIndices, made.get(0));
        if (nonpadKvSeqlen != null) {
            made.add(tensor(nonpadType, cached, seq));
            feed.put(nonpadKvSeqlen, made.get(1));
        }
        return made;
    }

    private OnnxTensor tensor(OnnxJavaType type, long[] cached, int plus) throws OrtException {
        if (type == OnnxJavaType.INT32) {
            int[] v = new int[cached.length];
            for (int b = 0; b < v.length; b++) {
                v[b] = Math.toIntExact(cached[b] + plus);
            }
            return OnnxTensor.createTensor(env, v);
        }
        long[] v = new long[cached.length];
        for (int b = 0; b < v.length; b++) {
            v[b] = cached[b] + plus;
        }
        return OnnxTensor.createTensor(env, v);
    }
}
