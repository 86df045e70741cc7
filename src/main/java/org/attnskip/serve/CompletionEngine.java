package org.attnskip.serve;

import org.attnskip.runtime.DecoderSession;
import org.attnskip.runtime.KvCache;
import org.attnskip.runtime.TextPieces;
import org.attnskip.runtime.Tokenizer;

import java.util.Arrays;
import java.util.function.BooleanSupplier;
import java.util.function.Consumer;

/**
 * Generates one completion the way {@code attnskip generate} does (prefill the prompt, then one
 * token per run, stop at EOS or BOS), with OpenAI's limits: at most max_tokens new tokens, cut at
 * the first stop sequence. The caller's thread runs the prefill with the request's own KV cache;
 * the decode steps then run either on that thread (batch 1) or, when a {@link DecodeBatcher} is
 * given, in runs shared with other requests. Either way no request ever reads another's cache.
 */
final class CompletionEngine {
    /** What a completion produced; finishReason is "stop", "length" or "cancelled". */
    record Completion(String text, String finishReason, int promptTokens, int completionTokens) {
    }

    private final DecoderSession session;
    private final Tokenizer tokenizer;
    private final TextPieces pieces;
    private final ServerMetrics metrics;
    private final DecodeBatcher batcher;

    /** @param batcher shares decode steps across requests; null decodes each request alone */
    CompletionEngine(DecoderSession session, Tokenizer tokenizer, ServerMetrics metrics, DecodeBatcher batcher) {
        this.session = session;
        this.tokenizer = tokenizer;
        this.pieces = new TextPieces(tokenizer);
        this.metrics = metrics;
        this.batcher = batcher;
    }

    /**
     * @param promptIds   BOS first
     * @param sink        receives the completion's text as it becomes final
     * @param clientGone  polled between steps; true stops generation and frees the cache
     * @param arrivalNano when the request arrived, for the time-to-first-token histogram
     */
    Completion complete(int[] promptIds, CompletionRequest request, Consumer<String> sink, BooleanSupplier clientGone,
                        long arrivalNano) {
        // Alone, sized for the whole completion, so a cache updated in place is allocated once; the
        // batcher lays out growing caches side by side.
        KvCache cache = batcher != null ? session.growingCache(1)
                : session.emptyCache(1, (long) promptIds.length + request.maxTokens());
        CompletionProgress progress = new CompletionProgress(promptIds, request, sink, clientGone, arrivalNano, tokenizer,
                pieces, metrics, session.kvBytesPerPosition());
        try {
            DecoderSession.Output out = session.run(new long[][] {longs(promptIds)}, new long[][] {ones(promptIds.length)},
                    new long[][] {range(promptIds.length)}, cache);
            cache = out.cache();
            int next = progress.advance(out.logits().last(0));
            if (next >= 0 && batcher != null) {
                KvCache handedOver = cache;
                cache = null; // the batcher owns it now
                batcher.decode(progress, handedOver, next);
            } else {
                int position = promptIds.length;
                while (next >= 0) {
                    out = session.run(new long[][] {{next}}, new long[][] {ones(position + 1)}, new long[][] {{position}},
                            cache);
                    cache = out.cache();
                    next = progress.advance(out.logits().last(0));
                    position++;
                }
            }
        } catch (RuntimeException | Error e) {
            progress.release();
            throw e;
        } finally {
            if (cache != null) {
                cache.close();
            }
        }
        return progress.finish();
    }

    private static long[] longs(int[] ids) {
        return Arrays.stream(ids).asLongStream().toArray();
    }

    private static long[] ones(int n) {
        long[] out = new long[n];
        Arrays.fill(out, 1);
        return out;
    }

    private static long[] range(int n) {
        long[] out = new long[n];
        for (int i = 0; i < n; i++) {
            out[i] = i;
        }
        return out;
    }
}
