package org.attnskip.serve;

import org.attnskip.runtime.Sampler;
import org.attnskip.runtime.TextPieces;
import org.attnskip.runtime.Tokenizer;

import java.util.function.BooleanSupplier;
import java.util.function.Consumer;

/**
 * One completion's state between decode steps, wherever the steps run (alone or in a shared
 * batch): it samples the next token from the logits, releases text past the stop sequences, and
 * decides when to end (EOS or BOS, a stop sequence, max_tokens, or a client that went away). It
 * also keeps the completion's share of the server's metrics.
 */
final class CompletionProgress {
    private final CompletionRequest request;
    private final Consumer<String> sink;
    private final BooleanSupplier clientGone;
    private final long arrivalNano;
    private final Tokenizer tokenizer;
    private final TextPieces pieces;
    private final ServerMetrics metrics;
    private final long kvBytesPerPosition;
    private final StopSequences stops;
    private final Sampler sampler;
    private final int promptTokens;
    private volatile boolean abandoned;
    private int previous;
    private int count;
    private long lastTokenNano;
    private long heldBytes;
    private String finish = "length";
    private boolean released;

    CompletionProgress(int[] promptIds, CompletionRequest request, Consumer<String> sink, BooleanSupplier clientGone,
                       long arrivalNano, Tokenizer tokenizer, TextPieces pieces, ServerMetrics metrics,
                       long kvBytesPerPosition) {
        this.request = request;
        this.sink = sink;
        this.clientGone = clientGone;
        this.arrivalNano = arrivalNano;
        this.tokenizer = tokenizer;
        this.pieces = pieces;
        this.metrics = metrics;
        this.kvBytesPerPosition = kvBytesPerPosition;
        this.stops = new StopSequences(request.stop());
        this.sampler = new Sampler(request.temperature(), request.topP(), request.seed());
        this.promptTokens = promptIds.length;
        this.previous = promptIds[promptIds.length - 1];
        metrics.running(1);
        cached(promptIds.length);
    }

    /**
     * Takes the logits that follow the last token fed and returns the token to feed next, or -1
     * when the completion has ended (then nothing more is fed).
     */
    int advance(float[] logits) {
        int next = sampler.next(logits);
        if (next == tokenizer.bos() || next == tokenizer.eos()) {
            finish = "stop";
            return -1;
        }
        long now = System.nanoTime();
        if (count == 0) {
            metrics.timeToFirstToken.observe((now - arrivalNano) / 1e9);
        } else {
            metrics.timePerOutputToken.observe((now - lastTokenNano) / 1e9);
        }
        lastTokenNano = now;
        count++;
        String text = stops.add(pieces.piece(previous, next));
        if (!text.isEmpty()) {
            sink.accept(text);
        }
        if (stops.stopped()) {
            finish = "stop";
            return -1;
        }
        if (count >= request.maxTokens()) {
            return -1;
        }
        if (abandoned || clientGone.getAsBoolean()) {
            finish = "cancelled";
            return -1;
        }
        previous = next;
        cached(1);
        return next;
    }

    /** Asks the completion to end at its next step (the worker waiting for it was interrupted). */
    void abandon() {
        abandoned = true;
    }

    /** Ends the completion: gives back its share of the gauges and releases the held-back text. */
    CompletionEngine.Completion finish() {
        release();
        String rest = stops.flush();
        if (!rest.isEmpty() && !finish.equals("cancelled")) {
            sink.accept(rest);
        }
        return new CompletionEngine.Completion(stops.text(), finish, promptTokens, count);
    }

    /** Gives back the completion's share of the running and KV-bytes gauges; safe to call twice. */
    void release() {
        if (released) {
            return;
        }
        released = true;
        metrics.kvBytes(-heldBytes);
        heldBytes = 0;
        metrics.running(-1);
    }

    private void cached(int positions) {
        long added = kvBytesPerPosition * positions;
        metrics.kvBytes(added);
        heldBytes += added;
    }
}
