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
import java.util.Arrays;
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

    /** Puts both inputs for a run of {@code seq} positions after {@code past} cached ones; returns the tensors made. */
    List<OnnxTensor> put(Map<String, OnnxTensor> feed, int batch, long past, int seq) throws OrtException {
        List<OnnxTensor> made = new ArrayList<>(2);
        made.add(tensor(writeType, batch, past));
        feed.put(writeIndices, made.get(0));
        if (nonpadKvSeqlen != null) {
            made.add(tensor(nonpadType, batch, past + seq));
            feed.put(nonpadKvSeqlen, made.get(1));
        }
        return made;
    }

    private OnnxTensor tensor(OnnxJavaType type, int batch, long value) throws OrtException {
        if (type == OnnxJavaType.INT32) {
            int[] v = new int[batch];
            Arrays.fill(v, Math.toIntExact(value));
            return OnnxTensor.createTensor(env, v);
        }
        long[] v = new long[batch];
        Arrays.fill(v, value);
        return OnnxTensor.createTensor(env, v);
    }
}
