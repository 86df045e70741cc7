package org.attnskip.runtime;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtSession;

import java.nio.ByteBuffer;
import java.util.List;
import java.util.Map;

/**
 * The past keys and values fed to the next run, by graph input name. Two kinds:
 * <ul>
 *   <li>growing: the empty tensors of a new sequence or the {@code present.*} outputs of the previous
 *       run, in which case the cache owns that run's result (closing it frees them);</li>
 *   <li>in place: one fixed-capacity buffer per input, [batch, heads, capacity, head_dim], allocated
 *       once per sequence and bound both as the input and as the pinned {@code present.*} output, so
 *       that the attention writes the new positions into it and a run copies no past position. Only
 *       the first {@link #length} positions hold data.</li>
 * </ul>
 */
public final class KvCache implements AutoCloseable {
    private final Map<String, OnnxTensor> past;
    private final int batch;
    private final long length;
    private final OrtSession.Result owner;
    /** For an in-place cache: the memory under each tensor of {@code past}, in slot order; else null. */
    private final List<ByteBuffer> buffers;
    /** For an in-place cache: the present outputs bound to the same tensors. */
    private final Map<String, OnnxTensor> presentBindings;
    private final long capacity;
    private boolean closed;

    KvCache(Map<String, OnnxTensor> past, int batch, long length, OrtSession.Result owner) {
        this(past, batch, length, owner, null, Map.of(), 0);
    }

    private KvCache(Map<String, OnnxTensor> past, int batch, long length, OrtSession.Result owner,
                    List<ByteBuffer> buffers, Map<String, OnnxTensor> presentBindings, long capacity) {
        this.past = past;
        this.batch = batch;
        this.length = length;
        this.owner = owner;
        this.buffers = buffers;
        this.presentBindings = presentBindings;
        this.capacity = capacity;
    }

    /**
     * An in-place cache over buffers the caller made (a capacity of 0 with no tensors: not allocated
     * yet, the first run sizes it).
     */
    static KvCache inPlace(Map<String, OnnxTensor> past, Map<String, OnnxTensor> presentBindings,
                           List<ByteBuffer> buffers, int batch, long length, long capacity) {
        return new KvCache(past, batch, length, null, buffers, presentBindings, capacity);
    }

    Map<String, OnnxTensor> tensors() {
        return past;
    }

    /** For an in-place cache, the pinned outputs of a run: each present output bound to its past tensor. */
    Map<String, OnnxTensor> presentBindings() {
        return presentBindings;
    }

    /** For an in-place cache, the memory under each past tensor, in the session's slot order. */
    List<ByteBuffer> buffers() {
        return buffers;
    }

    boolean inPlace() {
        return buffers != null;
    }

    /** Positions an in-place cache can hold before it must be reallocated; 0 for a growing cache. */
    long capacity() {
        return capacity;
    }

    /**
     * The same buffers after a run wrote {@code added} positions into them. This cache hands them
     * over: closing it afterwards frees nothing.
     */
    KvCache extended(long added) {
        closed = true;
        return new KvCache(past, batch, length + added, null, buffers, presentBindings, capacity);
    }

    public int batch() {
        return batch;
    }

    /** How many positions (padding included) the cache holds. */
    public long length() {
        return length;
    }

    @Override
    public void close() {
        if (closed) {
            return; // a run consumes its cache, and callers may close it again on their way out
        }
        closed = true;
        if (owner != null) {
            owner.close();
        } else {
            past.values().forEach(OnnxTensor::close);
        }
    }
}
