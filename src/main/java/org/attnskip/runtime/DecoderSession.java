package org.attnskip.runtime;

import ai.onnxruntime.NodeInfo;
import ai.onnxruntime.OnnxJavaType;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import ai.onnxruntime.TensorInfo;
import org.attnskip.onnx.BadInputException;

import java.nio.ByteBuffer;
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
    private final TokenFeed tokens;
    private final LogitsToKeepFeed keep;
    private final boolean batchable;
    private final KvBatch.Padding padding;
    private final boolean inPlace;
    private final LogitsOutput logits;
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
            tokens = new TokenFeed(env, io, inputs);
            keep = new LogitsToKeepFeed(env, io.logitsToKeep(), inputs);
            slots = cacheSlots(io, inputs, outputs);
            staticFeeds = StaticCacheFeeds.of(env, io.staticCache(), inputs);
            inPlace = !slots.isEmpty() && slots.stream().allMatch(CacheSlot::inPlace);
            // Rows of different lengths share a run through padding: GroupQueryAttention (whose caches
            // are the in-place kind) takes each row's length from the mask (seqlens_k) and its past from
            // position 0, and a static cache gets each row's length from the mask as write_indices and
            // nonpad_kv_seqlen, so rows are padded on the right; other attention needs left padding hidden
            // by the mask, and explicit positions. A fixed batch dimension fits one row count only; KvBatch
            // lays out [batch, heads, past, head_dim] rows, so stacked caches decode alone.
            padding = inPlace ? KvBatch.Padding.RIGHT : KvBatch.Padding.LEFT;
            batchable = tokens.openBatch() && (tokens.hasMask() || (staticFeeds != null && staticFeeds.readsRowLengths()))
                    && (padding == KvBatch.Padding.RIGHT || tokens.hasPositions())
                    && slots.stream().noneMatch(CacheSlot::stacked);
            logits = new LogitsOutput(io.logits(), tensorInfo(outputs.get(io.logits())));
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
        return TokenFeed.tensorInfo(node);
    }

    /** The vocabulary size the logits output declares, or -1 when its last dimension is symbolic. */
    public int vocabSize() {
        return logits.vocabSize();
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
     * graph takes attention_mask (and position_ids, for left padding), or a static cache's nonpad_kv_seqlen. Whether the graph honours
     * the padding is another matter: see {@link KvBatch#disagreementWithDecodingAlone}.
     */
    public boolean acceptsBatches() {
        return batchable;
    }

    /** The side on which {@link KvBatch} pads rows of different lengths for this graph's attention. */
    public KvBatch.Padding batchPadding() {
        return padding;
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
    public long kvBytesPerToken() {
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
        return inPlace ? KvCache.inPlace(Map.of(), Map.of(), List.of(), batch, 0, 0, new InputScratch())
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

    /** As above, with the logits of the positions {@code rows} says the caller reads. */
    public Output run(long[][] inputIds, long[][] attentionMask, long[][] positionIds, KvCache cache, LogitRows rows) {
        return run(inputIds, attentionMask, positionIds, cache, Map.of(), rows);
    }

    /**
     * As above, also feeding inputs a rewrite added (such as the random pass's noise). The caller
     * keeps ownership of those tensors.
     */
    public Output run(long[][] inputIds, long[][] attentionMask, long[][] positionIds, KvCache cache,
                      Map<String, OnnxTensor> extraInputs) {
        return run(inputIds, attentionMask, positionIds, cache, extraInputs, LogitRows.ALL);
    }

    private Output run(long[][] inputIds, long[][] attentionMask, long[][] positionIds, KvCache cache,
                       Map<String, OnnxTensor> extraInputs, LogitRows rows) {
        int seq = inputIds[0].length;
        if (attentionMask[0].length != cache.length() + seq) {
            throw new IllegalArgumentException("attention_mask length " + attentionMask[0].length
                    + " != past " + cache.length() + " + seq " + seq);
        }
        long[] cached = staticFeeds == null ? null : StaticCacheFeeds.cachedPerRow(attentionMask, seq);
        logits.checkIds(inputIds);
        return run(inputIds.length, seq, cache, extraInputs,
                (feed, scratch, stepMaskWidth) -> tokens.put(feed, inputIds, attentionMask, positionIds, scratch), cached, rows);
    }

    /**
     * Runs one sequence's next tokens (batch 1, no padding) after its cached positions: the whole
     * prompt on an empty cache (prefill), or one token (a decode step). The cache is consumed as by
     * {@link #run(long[][], long[][], long[][], KvCache)}.
     */
    public Output append(int[] next, KvCache cache) {
        return append(next, cache, Map.of());
    }

    /** As above, also feeding inputs a rewrite added, which the caller keeps. */
    public Output append(int[] next, KvCache cache, Map<String, OnnxTensor> extraInputs) {
        return append(next, cache, extraInputs, LogitRows.ALL);
    }

    /**
     * As above, with the logits of the positions {@code rows} says the caller reads: {@link LogitRows#LAST}
     * lets a graph with a {@code logits_to_keep} input skip the LM head of the other prompt positions.
     */
    public Output append(int[] next, KvCache cache, LogitRows rows) {
        return append(next, cache, Map.of(), rows);
    }

    /** As above, also feeding inputs a rewrite added, which the caller keeps. */
    public Output append(int[] next, KvCache cache, Map<String, OnnxTensor> extraInputs, LogitRows rows) {
        logits.checkIds(next);
        long past = cache.length();
        return run(1, next.length, cache, extraInputs,
                (feed, scratch, stepMaskWidth) -> tokens.putAppended(feed, next, past, scratch, stepMaskWidth),
                new long[] {past}, rows);
    }

    /** How many runs of this session asked for {@code rows}' logits. */
    long runsAsking(LogitRows rows) {
        return keep.runsAsking(rows);
    }

    /** Whether the graph computes the LM head only for the positions a run asks for ({@link LogitRows}). */
    public boolean keepsAskedLogitsOnly() {
        return keep.present();
    }

    /**
     * Puts a run's token-side inputs into the feed and returns the tensors it made. A one-sequence
     * decode step may take a mask {@code stepMaskWidth} wide (0: as wide as its positions).
     */
    private interface Feeding {
        List<OnnxTensor> put(Map<String, OnnxTensor> feed, InputScratch scratch, int stepMaskWidth) throws OrtException;
    }

    /** @param cached each row's positions already in a static cache (where the run writes), else unused */
    private Output run(int batch, int seq, KvCache cache, Map<String, OnnxTensor> extraInputs, Feeding feeding,
                       long[] cached, LogitRows rows) {
        if (cache.batch() != batch) {
            throw new IllegalArgumentException("cache batch " + cache.batch() + " != input batch " + batch);
        }
        long needed = cache.length() + seq;
        if (cache.inPlace() && needed > cache.capacity()) {
            cache = KvCache.allocateInPlace(env, slots, batch,
                    cache.capacity() == 0 ? needed + INITIAL_SLACK : Math.max(needed, 2 * cache.capacity()), cache);
        }
        List<OnnxTensor> made = List.of();
        OrtSession.Result result = null;
        boolean stepMaps = false;
        try {
            InputScratch scratch = cache.scratch();
            // A decode step: the attention writes the new position into the bound buffers and the
            // logits go to the sequence's reused buffer, so ONNX Runtime hands back no tensor to wrap
            // and copy out. Only for one position, where every graph (a deployable freeze's
            // last-position prefill too) has exactly [batch, 1, vocab] logits. The step's maps are
            // the sequence's too.
            LogitsOutput.Pinned pinned = seq == 1 && cache.inPlace() ? logits.pinForStep(env, scratch, batch) : null;
            stepMaps = pinned != null;
            Map<String, OnnxTensor> feed = stepMaps ? scratch.stepFeed(cache.tensors()) : new HashMap<>(cache.tensors());
            feed.putAll(extraInputs);
            int stepMaskWidth = stepMaps && staticFeeds == null ? stepMaskWidth(cache.capacity(), needed) : 0;
            made = new ArrayList<>(feeding.put(feed, scratch, stepMaskWidth));
            keep.put(feed, rows);
            if (staticFeeds != null) {
                made.addAll(staticFeeds.put(feed, cached, seq));
            }
            if (pinned != null) {
                session.run(feed, Set.of(), scratch.stepOutputs(cache.presentBindings(), io.logits(), pinned.tensor())).close();
                return new Output(logits.read(pinned), cache.extended(seq));
            }
            if (cache.inPlace()) {
                // The attention writes the new positions into the bound buffers; only the logits are new.
                result = session.run(feed, Set.of(io.logits()), cache.presentBindings());
                return new Output(logits.read(result), cache.extended(seq));
            }
            result = session.run(feed);
            Logits values = logits.read(result);
            Map<String, OnnxTensor> present = new LinkedHashMap<>();
            for (CacheSlot s : slots) {
                present.put(s.past(), (OnnxTensor) result.get(s.present()).orElseThrow());
            }
            KvCache next = new KvCache(present, batch, cache.length() + seq, result);
            result = null;
            return new Output(values, next);
        } catch (OrtException e) {
            throw new BadInputException("ONNX Runtime failed to run the graph: "
                    + OrtSessionFactory.firstLine(e.getMessage()), e);
        } finally {
            made.forEach(OnnxTensor::close);
            if (stepMaps) {
                cache.scratch().forgetStepInputs(extraInputs.keySet(), cache.tensors());
            }
            if (result != null) {
                result.close();
            }
            cache.close();
        }
    }

    /**
     * The mask width of a one-sequence decode step on an in-place cache, or 0 for a mask as wide as its
     * positions. GroupQueryAttention graphs (the in-place kind) read the mask only as each row's length
     * (its sum) and the longest (its width), and the width may be anything from the positions used to
     * the cache's capacity, within the graph's rotary tables: one width for all the steps of a sequence
     * keeps their input shapes the same, so ONNX Runtime plans a step's memory once instead of at every
     * step (StepInputs#fixedWidthMask).
     */
    private int stepMaskWidth(long capacity, long positions) {
        long width = Math.min(capacity, io.stepMaskWidthLimit());
        return width >= positions ? Math.toIntExact(width) : 0;
    }

    /**
     * One prefill of {@code ids} (batch 1, empty cache) that returns the named [1, S, N] outputs as
     * [S][N], null where the graph lacks one: for reading what a rewrite exposed, such as the residual stream.
     */
    public Map<String, float[][]> prefillOutputs(int[] ids, List<String> names) {
        logits.checkIds(ids);
        Set<String> wanted = new java.util.LinkedHashSet<>(names);
        wanted.retainAll(session.getOutputNames());
        try (KvCache empty = growingCache(1)) {
            Map<String, OnnxTensor> feed = new HashMap<>(empty.tensors());
            List<OnnxTensor> made = tokens.putAppended(feed, ids, 0, null);
            keep.put(feed, LogitRows.ALL);
            try (OrtSession.Result result = session.run(feed, wanted)) {
                Map<String, float[][]> out = new LinkedHashMap<>();
                for (String name : names) {
                    out.put(name, FloatOutputs.rows(result, name));
                }
                return out;
            } finally {
                made.forEach(OnnxTensor::close);
            }
        } catch (OrtException e) {
            throw new BadInputException("ONNX Runtime failed to run the graph: "
                    + OrtSessionFactory.firstLine(e.getMessage()), e);
        }
    }

    @Override
    public void close() {
        keep.close();
        if (owned != null) {
            owned.close();
        }
    }
}
