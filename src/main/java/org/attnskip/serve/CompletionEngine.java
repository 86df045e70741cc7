package org.attnskip.serve;

import org.attnskip.runtime.DecoderSession;
import org.attnskip.runtime.KvCache;
import org.attnskip.runtime.Sampler;
import org.attnskip.runtime.TextPieces;
import org.attnskip.runtime.Tokenizer;

import java.util.Arrays;
import java.util.function.BooleanSupplier;
import java.util.function.Consumer;

/**
 * Generates one completion the way {@code attnskip generate} does (prefill the prompt, then one
 * token per run, stop at EOS or BOS), with OpenAI's limits: at most max_tokens new tokens, cut at
 * the first stop sequence. Each call owns its KV cache, so calls may run on many threads at once
 * over the one shared session. Between steps it asks whether the client is still there.
 */
final class CompletionEngine {
    /** What a completion produced; finishReason is "stop", "length" or "cancelled". */
    record Completion(String text, String finishReason, int promptTokens, int completionTokens) {
    }

    private final DecoderSession session;
    private final Tokenizer tokenizer;
    private final TextPieces pieces;
    private final ServerMetrics metrics;

    CompletionEngine(DecoderSession session, Tokenizer tokenizer, ServerMetrics metrics) {
        this.session = session;
        this.tokenizer = tokenizer;
        this.pieces = new TextPieces(tokenizer);
        this.metrics = metrics;
    }

    /**
     * @param promptIds   BOS first
     * @param sink        receives the completion's text as it becomes final
     * @param cancelled   polled between steps; true stops generation and frees the cache
     * @param arrivalNano when the request arrived, for the time-to-first-token histogram
     */
    Completion complete(int[] promptIds, CompletionRequest request, Consumer<String> sink, BooleanSupplier cancelled,
                        long arrivalNano) {
        StopSequences stops = new StopSequences(request.stop());
        Sampler sampler = new Sampler(request.temperature(), request.topP(), request.seed());
        long bytesPerPosition = session.kvBytesPerPosition();
        long heldBytes = 0;
        int count = 0;
        String finish = "length";
        KvCache cache = session.emptyCache(1);
        metrics.running(1);
        try {
            DecoderSession.Output out = session.run(new long[][] {longs(promptIds)}, new long[][] {ones(promptIds.length)},
                    new long[][] {range(promptIds.length)}, cache);
            cache = out.cache();
            heldBytes = track(heldBytes, bytesPerPosition * promptIds.length);
            float[] logits = out.logits().last(0);
            int pos = promptIds.length;
            int prev = promptIds[pos - 1];
            long last = 0;
            while (true) {
                int next = sampler.next(logits);
                if (next == tokenizer.bos() || next == tokenizer.eos()) {
                    finish = "stop";
                    break;
                }
                long now = System.nanoTime();
                if (count == 0) {
                    metrics.timeToFirstToken.observe((now - arrivalNano) / 1e9);
                } else {
                    metrics.timePerOutputToken.observe((now - last) / 1e9);
                }
                last = now;
                count++;
                String released = stops.add(pieces.piece(prev, next));
                if (!released.isEmpty()) {
                    sink.accept(released);
                }
                if (stops.stopped()) {
                    finish = "stop";
                    break;
                }
                if (count >= request.maxTokens()) {
                    break;
                }
                if (cancelled.getAsBoolean()) {
                    finish = "cancelled";
                    break;
                }
                prev = next;
                out = session.run(new long[][] {{next}}, new long[][] {ones(pos + 1)}, new long[][] {{pos}}, cache);
                cache = out.cache();
                heldBytes = track(heldBytes, bytesPerPosition);
                logits = out.logits().last(0);
                pos++;
            }
        } finally {
            cache.close();
            metrics.kvBytes(-heldBytes);
            metrics.running(-1);
        }
        String rest = stops.flush();
        if (!rest.isEmpty() && !finish.equals("cancelled")) {
            sink.accept(rest);
        }
        return new Completion(stops.text(), finish, promptIds.length, count);
    }

    private long track(long held, long added) {
        metrics.kvBytes(added);
        return held + added;
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
