package org.attnskip.runtime;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.LinkedHashMap;
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
    /** For an in-place cache: the sequence's reused input buffers; else null. */
    private final InputScratch scratch;
    private boolean closed;

    KvCache(Map<String, OnnxTensor> past, int batch, long length, OrtSession.Result owner) {
        this(past, batch, length, owner, null, Map.of(), 0, null);
    }

    private KvCache(Map<String, OnnxTensor> past, int batch, long length, OrtSession.Result owner,
                    List<ByteBuffer> buffers, Map<String, OnnxTensor> presentBindings, long capacity,
                    InputScratch scratch) {
        this.past = past;
        this.batch = batch;
        this.length = length;
        this.owner = owner;
        this.buffers = buffers;
        this.presentBindings = presentBindings;
        this.capacity = capacity;
        this.scratch = scratch;
    }

    /**
     * An in-place cache over buffers the caller made (a capacity of 0 with no tensors: not allocated
     * yet, the first run sizes it).
     */
    static KvCache inPlace(Map<String, OnnxTensor> past, Map<String, OnnxTensor> presentBindings,
                           List<ByteBuffer> buffers, int batch, long length, long capacity, InputScratch scratch) {
        return new KvCache(past, batch, length, null, buffers, presentBindings, capacity, scratch);
    }

    /**
     * Fixed-capacity buffers [batch, heads, capacity, head_dim], one per slot, holding the positions of
     * {@code from} (closed afterwards) when it is given.
     */
    static KvCache allocateInPlace(OrtEnvironment env, List<DecoderSession.CacheSlot> slots, int batch, long capacity,
                                   KvCache from) {
        List<ByteBuffer> buffers = new ArrayList<>();
        for (int i = 0; i < slots.size(); i++) {
            DecoderSession.CacheSlot s = slots.get(i);
            ByteBuffer data = ByteBuffer.allocateDirect(Math.toIntExact(batch * capacity * s.bytesPerPosition()))
                    .order(ByteOrder.nativeOrder());
            if (from != null && from.length() > 0) {
                copyPositions(from.buffers().get(i), from.capacity(), data, capacity, from.length(), batch * s.heads(),
                        s.bytesPerPosition() / s.heads());
            }
            buffers.add(data);
        }
        long length = 0;
        InputScratch scratch = new InputScratch();
        if (from != null) {
            length = from.length();
            scratch = from.scratch();
        }
        KvCache cache = bind(env, slots, buffers, batch, length, capacity, scratch);
        if (from != null) {
            from.close();
        }
        return cache;
    }

    /** A copy of an in-place cache in new buffers of the same capacity; the original is left as it was. */
    static KvCache copyInPlace(OrtEnvironment env, List<DecoderSession.CacheSlot> slots, KvCache from) {
        List<ByteBuffer> buffers = new ArrayList<>();
        for (ByteBuffer b : from.buffers()) {
            ByteBuffer source = b.duplicate();
            source.clear();
            ByteBuffer data = ByteBuffer.allocateDirect(source.capacity()).order(ByteOrder.nativeOrder());
            data.put(source).clear();
            buffers.add(data);
        }
        return bind(env, slots, buffers, from.batch(), from.length(), from.capacity(), new InputScratch());
    }

    /** One tensor per slot over its buffer, bound both as the past input and as the present output. */
    private static KvCache bind(OrtEnvironment env, List<DecoderSession.CacheSlot> slots, List<ByteBuffer> buffers,
                                int batch, long length, long capacity, InputScratch scratch) {
        Map<String, OnnxTensor> past = new LinkedHashMap<>();
        Map<String, OnnxTensor> present = new LinkedHashMap<>();
        try {
            for (int i = 0; i < slots.size(); i++) {
                DecoderSession.CacheSlot s = slots.get(i);
                OnnxTensor t = OnnxTensor.createTensor(env, buffers.get(i), s.shape(batch, capacity), s.type());
                past.put(s.past(), t);
                present.put(s.present(), t);
            }
        } catch (OrtException e) {
            past.values().forEach(OnnxTensor::close);
            throw new IllegalStateException("cannot create a KV cache: " + e.getMessage(), e);
        }
        return inPlace(past, present, buffers, batch, length, capacity, scratch);
    }

    /** Copies the first {@code length} positions of each [batch * heads] row from one capacity to another. */
    private static void copyPositions(ByteBuffer from, long fromCapacity, ByteBuffer to, long toCapacity, long length,
                                      long rows, long bytesPerRowPosition) {
        int bytes = Math.toIntExact(length * bytesPerRowPosition);
        for (long r = 0; r < rows; r++) {
            to.put(Math.toIntExact(r * toCapacity * bytesPerRowPosition), from,
                    Math.toIntExact(r * fromCapacity * bytesPerRowPosition), bytes);
        }
    }

    /** The sequence's reused input buffers, or null for a growing cache (whose runs allocate theirs). */
    InputScratch scratch() {
        return scratch;
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
        return new KvCache(past, batch, length + added, null, buffers, presentBindings, capacity, scratch);
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
        if (scratch != null) {
            scratch.close(); // a cache reallocated around the same scratch makes its logits tensor again
        }
    }
}
