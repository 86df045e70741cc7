package org.attnskip.runtime;

import ai.onnxruntime.OnnxTensor;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;

/**
 * Decodes many independent sequences one token at a time in shared runs. Each row keeps only its
 * own positions; the rows' caches are laid side by side, padded to the longest ({@link Padding}),
 * so a row gets the logits it would get alone (up to float rounding). Rows join after their own
 * prefill and leave when they finish; the batched cache is rebuilt only when the membership
 * changes, not on every step.
 * Not thread-safe: one thread drives a batch.
 */
public final class KvBatch implements AutoCloseable {
    /** Where a shorter row's padding goes. */
    public enum Padding {
        /**
         * Before the row's positions, hidden by attention_mask 0; each token's position_ids count only
         * the real tokens (what attention written out in plain ops honours).
         */
        LEFT,
        /**
         * After the row's positions: the mask is 1 over the row's own positions only, so that the
         * graph's seqlens_k (sum of the mask - 1) is each row's length and total_sequence_length the
         * batch's width, as ONNX Runtime GenAI batches GroupQueryAttention, which reads each row's
         * past from position 0 and writes its new position right after it. A static cache (opset 24)
         * reads the same count per row as its write_indices and, one more, nonpad_kv_seqlen.
         */
        RIGHT
    }

    /** One sequence in the batch. */
    public static final class Row {
        private long length;
        private KvCache joining; // its batch-1 cache until the next rebuild takes it in

        private Row(KvCache prefilled) {
            this.length = prefilled.length();
            this.joining = prefilled;
        }

        /** Positions the row's cache holds. */
        public long length() {
            return length;
        }
    }

    /** Positions an in-place batched cache gets beyond the longest row; a run that needs more doubles it. */
    private static final long IN_PLACE_ROOM = 32;

    private final DecoderSession session;
    private final Padding padding;
    private final List<Row> rows = new ArrayList<>();
    private List<Row> batchedRows = List.of(); // the rows of 'batched', in its order
    private KvCache batched;
    private long width; // positions per row in 'batched', padding included

    /** A batch padded as the graph's attention needs ({@link DecoderSession#batchPadding}). */
    public KvBatch(DecoderSession session) {
        this(session, session.batchPadding());
    }

    /** A batch padded on the given side, whether or not the graph honours it (for the check below). */
    public KvBatch(DecoderSession session, Padding padding) {
        if (!session.acceptsBatches()) {
            throw new IllegalArgumentException("the graph's input_ids has a fixed batch size");
        }
        this.session = session;
        this.padding = padding;
    }

    /**
     * How far a shared decode strays from decoding alone on this graph: the largest logit
     * difference over two sequences of different lengths decoded three steps together and alone,
     * divided by the largest logit (at least 1). Near 0 (float rounding) when the graph honours the
     * mask and positions of left-padded rows; fused attention ops that assume every row's past
     * starts at position 0 give differences of the order of the logits themselves.
     */
    public static double disagreementWithDecodingAlone(DecoderSession session) {
        return disagreementWithDecodingAlone(session, session.batchPadding());
    }

    /** As above, padding on the given side. */
    public static double disagreementWithDecodingAlone(DecoderSession session, Padding padding) {
        int[][] prompts = {{1, 2, 3, 4, 5}, {1, 6}};
        int[][] steps = {{2, 3, 4}, {5, 4, 3}};
        float[][][] alone = new float[2][][];
        for (int q = 0; q < 2; q++) {
            alone[q] = decodeAlone(session, prompts[q], steps[q]);
        }
        double worst = 0;
        double scale = 1;
        try (KvBatch batch = new KvBatch(session, padding)) {
            for (int[] prompt : prompts) {
                batch.join(prefill(session, prompt).cache());
            }
            for (int t = 0; t < steps[0].length; t++) {
                float[][] logits = batch.step(new int[] {steps[0][t], steps[1][t]});
                for (int q = 0; q < 2; q++) {
                    for (int v = 0; v < logits[q].length; v++) {
                        worst = Math.max(worst, Math.abs(logits[q][v] - alone[q][t][v]));
                        scale = Math.max(scale, Math.abs(alone[q][t][v]));
                    }
                }
            }
        }
        return worst / scale;
    }

    private static DecoderSession.Output prefill(DecoderSession session, int[] prompt) {
        LeftPadding.Inputs in = LeftPadding.prefill(new int[][] {prompt}, 0);
        return session.run(in.inputIds(), in.attentionMask(), in.positionIds(), session.growingCache(1), LogitRows.LAST);
    }

    /** The logits after each of {@code steps}, fed one at a time after the prompt, at batch 1. */
    private static float[][] decodeAlone(DecoderSession session, int[] prompt, int[] steps) {
        DecoderSession.Output out = prefill(session, prompt);
        KvCache cache = out.cache();
        long[][] mask = LeftPadding.prefill(new int[][] {prompt}, 0).attentionMask();
        float[][] logits = new float[steps.length][];
        for (int t = 0; t < steps.length; t++) {
            LeftPadding.Inputs next = LeftPadding.step(new int[] {steps[t]}, mask);
            out = session.run(next.inputIds(), next.attentionMask(), next.positionIds(), cache, LogitRows.LAST);
            cache = out.cache();
            mask = next.attentionMask();
            logits[t] = out.logits().last(0);
        }
        cache.close();
        return logits;
    }

    /**
     * Adds a prefilled sequence; the batch takes ownership of its batch-1 cache, every position of
     * which must be a real token (a prefill without padding).
     */
    public Row join(KvCache prefilled) {
        if (prefilled.batch() != 1) {
            throw new IllegalArgumentException("a joining cache must hold one sequence; it holds " + prefilled.batch());
        }
        Row row = new Row(prefilled);
        rows.add(row);
        return row;
    }

    /** Removes a row; its positions are freed at the next step. */
    public void leave(Row row) {
        if (!rows.remove(row)) {
            throw new IllegalArgumentException("the row is not in this batch");
        }
        if (row.joining != null) {
            row.joining.close();
            row.joining = null;
        }
    }

    /** The rows in the order that {@link #step} takes tokens and returns logits. */
    public List<Row> rows() {
        return Collections.unmodifiableList(rows);
    }

    public int size() {
        return rows.size();
    }

    /** Feeds one token per row (in {@link #rows()} order) and returns each row's next-token logits. */
    public float[][] step(int[] tokens) {
        if (tokens.length != rows.size() || rows.isEmpty()) {
            throw new IllegalArgumentException(tokens.length + " tokens for " + rows.size() + " rows");
        }
        if (!rows.equals(batchedRows)) {
            rebuild();
        }
        int batch = rows.size();
        long[][] ids = new long[batch][1];
        long[][] mask = new long[batch][(int) width + 1];
        long[][] positions = new long[batch][1];
        for (int b = 0; b < batch; b++) {
            Row row = rows.get(b);
            ids[b][0] = tokens[b];
            long first = padding == Padding.LEFT ? width - row.length : 0;
            for (long p = first; p <= first + row.length; p++) {
                mask[b][(int) p] = 1;
            }
            positions[b][0] = row.length;
        }
        KvCache input = batched;
        List<Row> inputRows = batchedRows;
        batched = null; // the run consumes it, even when it fails; a failed batch can only be closed
        batchedRows = List.of();
        DecoderSession.Output out = session.run(ids, mask, positions, input, LogitRows.LAST);
        batched = out.cache();
        batchedRows = inputRows;
        width++;
        float[][] logits = new float[batch][];
        for (int b = 0; b < batch; b++) {
            rows.get(b).length++;
            logits[b] = out.logits().last(b);
        }
        return logits;
    }

    /**
     * Lays the current rows' caches side by side: rows already batched are copied out of the old
     * batched cache, joining rows out of their own; columns that are padding for every row are dropped.
     */
    private void rebuild() {
        long newWidth = rows.stream().mapToLong(Row::length).max().orElseThrow();
        // Where the attention updates the cache in place (GroupQueryAttention, right padding), the rows
        // get one fixed buffer with room to grow, so that a shared step copies no past position either.
        boolean inPlace = session.updatesCacheInPlace() && padding == Padding.RIGHT;
        long stride = inPlace ? newWidth + IN_PLACE_ROOM : newWidth;
        KvCache fixed = inPlace ? session.emptyCache(rows.size(), stride) : null;
        List<DecoderSession.CacheSlot> slots = session.slots();
        List<ByteBuffer> data = new ArrayList<>();
        for (int i = 0; i < slots.size(); i++) {
            DecoderSession.CacheSlot slot = slots.get(i);
            int heads = (int) slot.heads();
            int rowBytes = (int) slot.headDim() * (slot.type() == ai.onnxruntime.OnnxJavaType.FLOAT16 ? 2 : 4);
            ByteBuffer old = batched == null ? null : bytes(batched, slot, i);
            ByteBuffer target = inPlace ? fixed.buffers().get(i)
                    : ByteBuffer.allocateDirect(Math.toIntExact(rows.size() * heads * newWidth * rowBytes))
                    .order(ByteOrder.nativeOrder());
            for (int r = 0; r < rows.size(); r++) {
                Row row = rows.get(r);
                ByteBuffer source;
                int sourceRow;
                long sourceWidth;
                long sourceSkip;
                if (row.joining != null) {
                    // an unpadded prefill: its positions start at 0 of a buffer as long as the cache, or
                    // of an in-place cache's larger capacity
                    source = bytes(row.joining, slot, i);
                    sourceRow = 0;
                    sourceWidth = row.joining.inPlace() ? row.joining.capacity() : row.length;
                    sourceSkip = 0;
                } else if (old != null && batchedRows.contains(row)) {
                    source = old;
                    sourceRow = batchedRows.indexOf(row);
                    sourceWidth = batched.inPlace() ? batched.capacity() : width;
                    sourceSkip = padding == Padding.LEFT ? width - row.length : 0;
                } else {
                    if (fixed != null) {
                        fixed.close();
                    }
                    throw new IllegalStateException("the batch lost its cache in a failed step; close it");
                }
                int span = Math.toIntExact(row.length * rowBytes);
                // a row's positions end at the right edge (left padding) or start at the left one
                long targetSkip = padding == Padding.LEFT ? newWidth - row.length : 0;
                for (int h = 0; h < heads; h++) {
                    long from = ((long) sourceRow * heads + h) * sourceWidth + sourceSkip;
                    long to = ((long) r * heads + h) * stride + targetSkip;
                    target.put(Math.toIntExact(to * rowBytes), source, Math.toIntExact(from * rowBytes), span);
                }
            }
            data.add(target);
        }
        KvCache rebuilt = inPlace ? fixed.extended(newWidth) : session.cacheOf(data, rows.size(), newWidth);
        if (batched != null) {
            batched.close();
        }
        for (Row row : rows) {
            if (row.joining != null) {
                row.joining.close();
                row.joining = null;
            }
        }
        batched = rebuilt;
        batchedRows = List.copyOf(rows);
        width = newWidth;
    }

    /**
     * One slot's bytes: an in-place cache's own buffer, or a heap copy of a growing cache's tensor
     * (ONNX Runtime hands out copies), taken per slot to bound the peak.
     */
    private static ByteBuffer bytes(KvCache cache, DecoderSession.CacheSlot slot, int index) {
        if (cache.inPlace()) {
            return cache.buffers().get(index);
        }
        Map<String, OnnxTensor> tensors = cache.tensors();
        return tensors.get(slot.past()).getByteBuffer().order(ByteOrder.nativeOrder());
    }

    @Override
    public void close() {
        for (Row row : rows) {
            if (row.joining != null) {
                row.joining.close();
                row.joining = null;
            }
        }
        rows.clear();
        if (batched != null) {
            batched.close();
            batched = null;
        }
        batchedRows = List.of();
    }
}
