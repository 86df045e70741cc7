package org.attnskip.serve;

import org.attnskip.runtime.DecodeLoop;
import org.attnskip.runtime.DecoderSession;
import org.attnskip.runtime.KvCache;
import org.attnskip.runtime.KvCacheCopy;
import org.attnskip.runtime.LogitRows;
import org.attnskip.runtime.TextPieces;
import org.attnskip.runtime.Tokenizer;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.function.BooleanSupplier;
import java.util.function.Consumer;
import java.util.function.IntFunction;

/**
 * Generates the choices of one request the way {@code attnskip generate} does (prefill the prompt,
 * then one token per run, stop at EOS or BOS), with OpenAI's limits: at most max_tokens new tokens,
 * cut at the first stop sequence. The caller's thread prefills each prompt once with its own KV
 * cache, and each of the prompt's n choices continues from its own copy of that cache. The decode
 * steps then run either on that thread, one choice after the other, or, when a {@link DecodeBatcher}
 * is given, in runs shared with the other choices and requests. Either way no choice ever reads
 * another's cache.
 */
final class CompletionEngine {
    /**
     * What a choice produced; finishReason is "stop", "length" or "cancelled". The text starts with
     * the prompt's when the choice echoes it; the trace is null unless log-probabilities were asked.
     */
    record Completion(String text, String finishReason, int promptTokens, int completionTokens, Choice choice,
                      TokenTrace trace) {
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
     * @param choices     grouped by prompt, in order; see {@link Choice#expand}
     * @param sinks       for each choice index, receives the choice's text as it becomes final
     * @param clientGone  polled between steps; true stops generation and frees the caches
     * @param arrivalNano when the request arrived, for the time-to-first-token histogram
     * @return one completion per choice, in the order given
     */
    List<Completion> complete(List<Choice> choices, CompletionRequest request, IntFunction<Consumer<String>> sinks,
                              BooleanSupplier clientGone, long arrivalNano) {
        List<CompletionProgress> progresses = new ArrayList<>();
        List<CompletionProgress> shared = new ArrayList<>();
        List<CompletableFuture<Void>> decoding = new ArrayList<>();
        try {
            for (int from = 0; from < choices.size(); ) {
                int to = from;
                while (to < choices.size() && choices.get(to).promptIndex() == choices.get(from).promptIndex()) {
                    to++;
                }
                List<Choice> group = choices.subList(from, to);
                for (Choice c : group) {
                    progresses.add(new CompletionProgress(c, request, sinks.apply(c.index()), clientGone, arrivalNano,
                            tokenizer, pieces, metrics, session.kvBytesPerToken()));
                }
                continuePrompt(group, progresses.subList(from, to), request, shared, decoding);
                from = to;
            }
            if (batcher != null) {
                batcher.awaitAll(shared, decoding);
            }
        } catch (RuntimeException | Error e) {
            if (batcher != null) {
                batcher.abandonAll(shared, decoding); // the batcher lets go of them before they are released
            }
            progresses.forEach(CompletionProgress::release);
            throw e;
        }
        return progresses.stream().map(CompletionProgress::finish).toList();
    }

    /** Prefills one prompt, then starts each of its choices from a copy of the cache. */
    private void continuePrompt(List<Choice> group, List<CompletionProgress> progresses, CompletionRequest request,
                                List<CompletionProgress> shared, List<CompletableFuture<Void>> decoding) {
        int[] promptIds = group.get(0).promptIds();
        // A single choice decoding alone gets a cache sized for the whole completion, so a cache updated in
        // place is allocated once; copies for several choices and the batcher's rows are growing caches.
        KvCache fresh = batcher == null && group.size() == 1
                ? session.emptyCache(1, (long) promptIds.length + request.maxTokens())
                : session.growingCache(1);
        Choice first = group.get(0);
        boolean promptLogprobs = first.echo() && first.logprobs() >= 0;
        DecoderSession.Output out = session.append(promptIds, fresh, promptLogprobs ? LogitRows.ALL : LogitRows.LAST);
        KvCache prefilled = out.cache();
        try {
            if (promptLogprobs) {
                List<TokenLogprob> prompt = TokenLogprob.ofPrompt(out.logits(), promptIds, first.logprobs());
                progresses.forEach(p -> p.promptLogprobs(prompt));
            }
            if (request.maxTokens() == 0) {
                return; // echo only
            }
            float[] last = out.logits().last(0);
            for (int i = 0; i < group.size(); i++) {
                CompletionProgress progress = progresses.get(i);
                int next = progress.advance(last);
                if (next < 0) {
                    continue;
                }
                KvCache own;
                if (i == group.size() - 1) {
                    own = prefilled; // the last choice takes the prefilled cache itself
                    prefilled = null;
                } else {
                    own = KvCacheCopy.of(session, prefilled);
                }
                if (batcher != null) {
                    shared.add(progress);
                    decoding.add(batcher.start(progress, own, next));
                } else {
                    decodeAlone(progress, own, next);
                }
            }
        } finally {
            if (prefilled != null) {
                prefilled.close();
            }
        }
    }

    private void decodeAlone(CompletionProgress progress, KvCache cache, int next) {
        DecodeLoop.decode(session, cache, next, progress::advance);
    }
}
