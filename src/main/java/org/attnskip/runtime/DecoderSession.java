package org.attnskip.runtime;

import ai.onnxruntime.NodeInfo;
import ai.onnxruntime.OnnxJavaType;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OnnxValue;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import ai.onnxruntime.TensorInfo;
import org.attnskip.onnx.BadInputException;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.IntBuffer;
import java.nio.LongBuffer;
import java.nio.ShortBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Runs a decoder graph: token ids, attention mask and position ids (where the graph takes them)
 * and the KV caches in; logits and the next caches out, under the names layout discovery found
 * ({@link DecoderIo}). A graph from which a rewriter removed some layers' cache still runs: only
 * the caches it keeps are fed. The cache may be fp32 or fp16; logits are returned as fp32 either way.
 * <p>
 * Where layout discovery finds that every kept cache belongs to an attention op that updates it in
 * place ({@link DecoderIo.CachePair#inPlace}, e.g. {@code export --graph fused}), {@link #emptyCache} gives a fixed-capacity buffer per cache
 * input, bound as the input and as the pinned present output of each run: a decode step then copies
 * no past position. Elsewhere (caches grown by Concat) each run returns new present tensors, as before.
 */
public final class DecoderSession implements AutoCloseable {
    /** One cache input, the output that refills it, and its fixed dimensions. */
    record CacheSlot(int layer, String past, String present, boolean stacked, boolean inPlace, long heads, long headDim,
                     OnnxJavaType type, boolean sequenceMajor) {
        /**
         * [batch, heads, length, head_dim], or [2, batch, heads, length, head_dim] when key and value are stacked,
         * or a static cache's [batch, length, kv_hidden] (sequenceMajor: one "head" as wide as all of them).
         */
        long[] shape(int batch, long length) {
            if (sequenceMajor) {
                return new long[] {batch, length, headDim};
            }
            return stacked ? new long[] {2, batch, heads, length, headDim} : new long[] {batch, heads, length, headDim};
        }

        long bytesPerPosition() {
            return (stacked ? 2 : 1) * heads * headDim * (type == OnnxJavaType.FLOAT16 ? 2 : 4);
        }
    }

    /** Positions an in-place cache gets beyond the first run's need when no capacity was asked for. */
    private static final long INITIAL_SLACK = 256;

    private final OrtEnvironment env = OrtSessionFactory.environment();
    private final OrtSession session;
    private final OpenedSession owned;
    private final DecoderIo io;
    private final List<CacheSlot> slots;
    private final boolean hasMask;
    private final boolean hasPositions;
    private final OnnxJavaType idType;
    private final OnnxJavaType maskType;
    private final OnnxJavaType positionType;
    private final boolean batchable;
    private final boolean inPlace;
    private final int vocabSize;
    /** write_indices and nonpad_kv_seqlen of a static-cache graph; null elsewhere. */
    private final StaticCacheFeeds staticFeeds;

    private DecoderSession(OrtSession session, DecoderIo io, OpenedSession owned) {
        this.session = session;
        this.io = io;
        this.owned = owned;
        try {
            Map<String, NodeInfo> inputs = session.getInputInfo();
            Map<String, NodeInfo> outputs = session.getOutputInfo();
            if (!inputs.containsKey(io.inputIds()) || !outputs.containsKey(io.logits())) {
                throw new BadInputException("the session lacks the graph's token input '" + io.inputIds()
                        + "' or logits output '" + io.logits() + "'");
            }
            TensorInfo ids = tensorInfo(inputs.get(io.inputIds()));
            idType = ids.type;
            hasMask = io.attentionMask() != null && inputs.containsKey(io.attentionMask());
            hasPositions = io.positionIds() != null && inputs.containsKey(io.positionIds());
            maskType = hasMask ? tensorInfo(inputs.get(io.attentionMask())).type : null;
            positionType = hasPositions ? tensorInfo(inputs.get(io.positionIds())).type : null;
            slots = cacheSlots(io, inputs, outputs);
            staticFeeds = StaticCacheFeeds.of(env, io.staticCache(), inputs);
            inPlace = !slots.isEmpty() && slots.stream().allMatch(CacheSlot::inPlace);
            // Rows of different lengths share a run only through left padding, which needs the mask to
            // hide it and explicit positions; a fixed batch dimension fits one row count only; KvBatch
            // lays out [batch, heads, past, head_dim] rows, so stacked caches decode alone.
            batchable = ids.getShape().length == 2 && ids.getShape()[0] < 0 && hasMask && hasPositions
                    && slots.stream().noneMatch(CacheSlot::stacked);
            long[] logitsShape = tensorInfo(outputs.get(io.logits())).getShape();
            vocabSize = logitsShape.length == 3 && logitsShape[2] > 0 ? (int) logitsShape[2] : -1;
        } catch (OrtException e) {
            throw new BadInputException("cannot read the graph's inputs and outputs: " + e.getMessage(), e);
        }
    }

    /** Opens a model file on a device; the returned session owns the ONNX Runtime session. */
    public static DecoderSession open(Path modelFile, Device device) {
        return open(modelFile, OrtSessionFactory.Settings.of(device));
    }

    /** As above with explicit session options (threads, graph optimisation level). */
    public static DecoderSession open(Path modelFile, OrtSessionFactory.Settings settings) {
        DecoderIo io = DecoderIo.discover(modelFile);
        OpenedSession opened = OrtSessionFactory.open(modelFile, settings);
        try {
            return new DecoderSession(opened.session(), io, opened);
        } catch (RuntimeException e) {
            opened.close();
            throw e;
        }
    }

    private static List<CacheSlot> cacheSlots(DecoderIo io, Map<String, NodeInfo> inputs, Map<String, NodeInfo> outputs) {
        List<CacheSlot> slots = new ArrayList<>();
        for (DecoderIo.CachePair pair : io.caches()) {
            NodeInfo in = inputs.get(pair.past());
            if (in == null || !outputs.containsKey(pair.present())) {
                throw new BadInputException("the session lacks cache input '" + pair.past() + "' or output '"
                        + pair.present() + "'");
            }
            TensorInfo info = tensorInfo(in);
            long[] shape = info.getShape();
            if (io.staticCache() != null && pair.inPlace() && shape.length == 3 && shape[2] > 0
                    && (info.type == OnnxJavaType.FLOAT || info.type == OnnxJavaType.FLOAT16)) {
                slots.add(new CacheSlot(pair.layer(), pair.past(), pair.present(), false, true, 1, shape[2], info.type, true));
                continue;
            }
            // A stacked cache has a leading axis of 2 (key, value) before [batch, kv_heads, past, head_dim].
            int at = pair.stacked() ? 1 : 0;
            if (shape.length != 4 + at || (pair.stacked() && shape[0] != 2) || shape[at + 1] <= 0 || shape[at + 3] <= 0) {
                throw new BadInputException("cache input '" + in.getName() + "' must be " + (pair.stacked() ? "[2, " : "[")
                        + "batch, kv_heads, past, head_dim] with fixed kv_heads and head_dim; it is "
                        + java.util.Arrays.toString(shape));
            }
            if (info.type != OnnxJavaType.FLOAT && info.type != OnnxJavaType.FLOAT16) {
                throw new BadInputException("cache input '" + in.getName() + "' is " + info.type + "; only fp32 and fp16 are supported");
            }
            slots.add(new CacheSlot(pair.layer(), pair.past(), pair.present(), pair.stacked(), pair.inPlace(),
                    shape[at + 1], shape[at + 3], info.type, false));
        }
        return List.copyOf(slots);
    }

    /** The graph's input and output names. */
    public DecoderIo io() {
        return io;
    }

    private static TensorInfo tensorInfo(NodeInfo node) {
        if (!(node.getInfo() instanceof TensorInfo t)) {
            throw new BadInputException("graph input/output '" + node.getName() + "' is not a tensor");
        }
        return t;
    }

    /** The vocabulary size the logits output declares, or -1 when its last dimension is symbolic. */
    public int vocabSize() {
        return vocabSize;
    }

    /** The layers whose KV cache the graph still has, in order. */
    public List<Integer> cachedLayers() {
        List<Integer> layers = new ArrayList<>();
        for (CacheSlot s : slots) {
            if (!layers.contains(s.layer())) {
                layers.add(s.layer());
            }
        }
        return Collections.unmodifiableList(layers);
    }

    /**
     * Whether sequences of different lengths can share a run: the batch dimension is open and the
     * graph takes attention_mask and position_ids. Whether the graph honours them for left padding
     * is another matter: see {@link KvBatch#disagreementWithDecodingAlone}.
     */
    public boolean acceptsBatches() {
        return batchable;
    }

    List<CacheSlot> slots() {
        return slots;
    }

    /** Wraps cache tensors made from bytes (one direct buffer per slot, in slot order) as a cache of {@code length} positions. */
    KvCache cacheOf(List<ByteBuffer> data, int batch, long length) {
        Map<String, OnnxTensor> past = new LinkedHashMap<>();
        try {
            for (int i = 0; i < slots.size(); i++) {
                CacheSlot s = slots.get(i);
                past.put(s.past(), OnnxTensor.createTensor(env, data.get(i), s.shape(batch, length), s.type()));
            }
        } catch (OrtException e) {
            past.values().forEach(OnnxTensor::close);
            throw new IllegalStateException("cannot create a KV cache: " + e.getMessage(), e);
        }
        return new KvCache(past, batch, length, null);
    }

    /** Bytes of KV cache per position of one sequence, over all layers that keep one. */
    public long kvBytesPerPosition() {
        long total = 0;
        for (CacheSlot s : slots) {
            total += s.bytesPerPosition();
        }
        return total;
    }

    /** The device the session runs on and, when {@code auto} fell back to the CPU, a note saying so. */
    public OpenedSession opened() {
        return owned;
    }

    /**
     * An empty cache (no past positions) for a batch of sequences: updated in place where the graph
     * allows it, sized by the first run and reallocated (doubling) when a run needs more positions.
     */
    public KvCache emptyCache(int batch) {
        return inPlace ? KvCache.inPlace(Map.of(), Map.of(), List.of(), batch, 0, 0, new InputScratch(3))
                : growingCache(batch);
    }

    /**
     * As {@link #emptyCache(int)}, allocated once for {@code capacity} positions (prompt and generated
     * tokens) when it is updated in place.
     */
    public KvCache emptyCache(int batch, long capacity) {
        return inPlace ? KvCache.allocateInPlace(env, slots, batch, capacity, null) : growingCache(batch);
    }

    /**
     * An empty cache that each run replaces by its present outputs, past and new positions: every graph
     * takes it but a static-cache one, whose buffers cannot grow; that one gets its in-place cache.
     */
    public KvCache growingCache(int batch) {
        if (staticFeeds != null && inPlace) {
            return emptyCache(batch);
        }
        List<ByteBuffer> none = new ArrayList<>();
        slots.forEach(s -> none.add(ByteBuffer.allocateDirect(0)));
        return cacheOf(none, batch, 0);
    }

    /** Whether {@link #emptyCache} is a fixed buffer that the attention updates in place. */
    public boolean updatesCacheInPlace() {
        return inPlace;
    }

    /** The logits of a run and the cache to feed to the next one. */
    public record Output(Logits logits, KvCache cache) {
    }

    /**
     * Runs ids [batch][seq] after the cached positions. {@code attentionMask} is [batch][past+seq]
     * (1 for real tokens, 0 for padding) and {@code positionIds} [batch][seq]. The given cache is
     * consumed: it is closed after the run, and the returned one replaces it.
     */
    public Output run(long[][] inputIds, long[][] attentionMask, long[][] positionIds, KvCache cache) {
        return run(inputIds, attentionMask, positionIds, cache, Map.of());
    }

    /**
     * As above, also feeding inputs a rewrite added (such as the random pass's noise). The caller
     * keeps ownership of those tensors.
     */
    public Output run(long[][] inputIds, long[][] attentionMask, long[][] positionIds, KvCache cache,
                      Map<String, OnnxTensor> extraInputs) {
        int batch = inputIds.length;
        int seq = inputIds[0].length;
        if (cache.batch() != batch) {
            throw new IllegalArgumentException("cache batch " + cache.batch() + " != input batch " + batch);
        }
        if (attentionMask[0].length != cache.length() + seq) {
            throw new IllegalArgumentException("attention_mask length " + attentionMask[0].length
                    + " != past " + cache.length() + " + seq " + seq);
        }
        checkVocabulary(inputIds);
        long needed = cache.length() + seq;
        if (cache.inPlace() && needed > cache.capacity()) {
            cache = KvCache.allocateInPlace(env, slots, batch,
                    cache.capacity() == 0 ? needed + INITIAL_SLACK : Math.max(needed, 2 * cache.capacity()), cache);
        }
        Map<String, OnnxTensor> feed = new HashMap<>(cache.tensors());
        feed.putAll(extraInputs);
        List<OnnxTensor> made = new ArrayList<>();
        OrtSession.Result result = null;
        try {
            InputScratch scratch = cache.scratch();
            made.add(put(feed, io.inputIds(), integers(inputIds, idType, scratch, 0)));
            if (hasMask) {
                made.add(put(feed, io.attentionMask(), integers(attentionMask, maskType, scratch, 1)));
            }
            if (hasPositions) {
                made.add(put(feed, io.positionIds(), integers(positionIds, positionType, scratch, 2)));
            }
            if (staticFeeds != null) {
                made.addAll(staticFeeds.put(feed, batch, cache.length(), seq));
            }
            if (cache.inPlace()) {
                // The attention writes the new positions into the bound buffers; only the logits are new.
                result = session.run(feed, Set.of(io.logits()), cache.presentBindings());
                return new Output(readLogits(result), cache.extended(seq));
            }
            result = session.run(feed);
            Logits logits = readLogits(result);
            Map<String, OnnxTensor> present = new LinkedHashMap<>();
            for (CacheSlot s : slots) {
                present.put(s.past(), (OnnxTensor) result.get(s.present()).orElseThrow());
            }
            KvCache next = new KvCache(present, batch, cache.length() + seq, result);
            result = null;
            return new Output(logits, next);
        } catch (OrtException e) {
            throw new BadInputException("ONNX Runtime failed to run the graph: "
                    + OrtSessionFactory.firstLine(e.getMessage()), e);
        } finally {
            made.forEach(OnnxTensor::close);
            if (result != null) {
                result.close();
            }
            cache.close();
        }
    }

    /** A clear error instead of ONNX Runtime's "index out of range" from deep inside the embedding. */
    private void checkVocabulary(long[][] inputIds) {
        if (vocabSize <= 0) {
            return;
        }
        for (long[] row : inputIds) {
            for (long id : row) {
                if (id < 0 || id >= vocabSize) {
                    throw new BadInputException("token id " + id + " is outside the model's vocabulary of " + vocabSize
                            + " (is the tokenizer the model's own?)");
                }
            }
        }
    }

    private static OnnxTensor put(Map<String, OnnxTensor> feed, String name, OnnxTensor t) {
        feed.put(name, t);
        return t;
    }

    private Logits readLogits(OrtSession.Result result) {
        OnnxValue value = result.get(io.logits()).orElseThrow();
        OnnxTensor t = (OnnxTensor) value;
        long[] shape = t.getInfo().getShape();
        if (shape.length != 3) {
            throw new BadInputException("logits must be [batch, seq, vocab]; they are " + java.util.Arrays.toString(shape));
        }
        float[] values = new float[Math.toIntExact(shape[0] * shape[1] * shape[2])];
        if (t.getInfo().type == OnnxJavaType.FLOAT16) {
            ShortBuffer half = t.getShortBuffer();
            for (int i = 0; i < values.length; i++) {
                values[i] = org.attnskip.onnx.Half.toFloat(half.get(i));
            }
        } else {
            FloatBuffer f = t.getFloatBuffer();
            f.get(values);
        }
        return new Logits(values, (int) shape[0], (int) shape[1], (int) shape[2]);
    }

    /**
     * Rows of equal length as an int64 tensor, or int32 where the graph declares that (ORT GenAI's
     * masks), written into the sequence's scratch buffer {@code index} when it has one.
     */
    private OnnxTensor integers(long[][] rows, OnnxJavaType type, InputScratch scratch, int index) throws OrtException {
        int b = rows.length;
        int s = rows[0].length;
        for (long[] row : rows) {
            if (row.length != s) {
                throw new IllegalArgumentException("ragged batch: rows of length " + s + " and " + row.length);
            }
        }
        int bytes = (type == OnnxJavaType.INT32 ? 4 : 8) * b * s;
        ByteBuffer memory = scratch != null ? scratch.take(index, bytes)
                : ByteBuffer.allocateDirect(bytes).order(ByteOrder.nativeOrder());
        if (type == OnnxJavaType.INT32) {
            IntBuffer buf = memory.asIntBuffer();
            for (long[] row : rows) {
                for (long v : row) {
                    buf.put(Math.toIntExact(v));
                }
            }
            buf.rewind();
            return OnnxTensor.createTensor(env, buf, new long[] {b, s});
        }
        LongBuffer buf = memory.asLongBuffer();
        for (long[] row : rows) {
            buf.put(row);
        }
        buf.rewind();
        return OnnxTensor.createTensor(env, buf, new long[] {b, s});
    }

    @Override
    public void close() {
        if (owned != null) {
            owned.close();
        }
    }
}
