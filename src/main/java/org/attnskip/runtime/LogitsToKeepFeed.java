package org.attnskip.runtime;

import ai.onnxruntime.NodeInfo;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLongArray;

/**
 * Feeds a graph's {@code logits_to_keep} input ({@link DecoderIo#logitsToKeep}): 0 for
 * {@link LogitRows#ALL}, 1 for {@link LogitRows#LAST}. The two [1] tensors are made once and shared
 * by every run of the session (ONNX Runtime only reads them); a graph without the input gets nothing.
 */
final class LogitsToKeepFeed implements AutoCloseable {
    private final String name;
    private final OnnxTensor all;
    private final OnnxTensor last;
    /** Runs that asked for each {@link LogitRows}, by ordinal: what tests check a caller asked for. */
    private final AtomicLongArray asked = new AtomicLongArray(LogitRows.values().length);

    LogitsToKeepFeed(OrtEnvironment env, String name, Map<String, NodeInfo> inputs) throws OrtException {
        this.name = name != null && inputs.containsKey(name) ? name : null;
        this.all = this.name == null ? null : count(env, 0);
        this.last = this.name == null ? null : count(env, 1);
    }

    private static OnnxTensor count(OrtEnvironment env, long n) throws OrtException {
        var buffer = ByteBuffer.allocateDirect(Long.BYTES).order(ByteOrder.nativeOrder()).asLongBuffer();
        buffer.put(0, n);
        return OnnxTensor.createTensor(env, buffer, new long[] {1});
    }

    /** Whether the graph computes logits only for the positions asked for. */
    boolean present() {
        return name != null;
    }

    void put(Map<String, OnnxTensor> feed, LogitRows rows) {
        asked.incrementAndGet(rows.ordinal());
        if (name != null) {
            feed.put(name, rows == LogitRows.LAST ? last : all);
        }
    }

    long runsAsking(LogitRows rows) {
        return asked.get(rows.ordinal());
    }

    @Override
    public void close() {
        if (name != null) {
            all.close();
            last.close();
        }
    }
}
