package org.attnskip.serve;

import org.attnskip.runtime.Sampler;
import org.attnskip.runtime.TextPieces;
import org.attnskip.runtime.Tokenizer;

import java.util.ArrayList;
import java.util.List;
import java.util.function.BooleanSupplier;
import java.util.function.Consumer;

/**
 * One completion's state between decode steps, wherever the steps run (alone or in a shared
 * batch): it samples the next token from the logits, releases text past the stop sequences, and
 * decides when to end (EOS or BOS, a stop sequence, max_tokens, or a client that went away). It
 * also keeps the completion's share of the server's metrics, and the tokens' log-probabilities
 * when the choice asks for them.
 */
final class CompletionProgress {
    private final CompletionRequest request;
    private final Choice choice;
    private final Consumer<String> sink;
    private final BooleanSupplier clientGone;
    private final long arrivalNano;
    private final Tokenizer tokenizer;
    private final TextPieces pieces;
    private final ServerMetrics metrics;
    private final long kvBytesPerToken;
    private final StopSequences stops;
    private final Sampler sampler;
    private final int promptTokens;
    private final String echoText;
    private final List<TokenTrace.Entry> generated = new ArrayList<>();
    private List<TokenLogprob> promptLogprobs;
    private volatile boolean abandoned;
    private int previous;
    private int count;
    private long lastTokenNano;
    private long heldBytes;
    private String finish = "length";
    private boolean released;

    CompletionProgress(Choice choice, CompletionRequest request, Consumer<String> sink, BooleanSupplier clientGone,
                       long arrivalNano, Tokenizer tokenizer, TextPieces pieces, ServerMetrics metrics,
                       long kvBytesPerToken) {
        int[] promptIds = choice.promptIds();
        this.request = request;
        this.choice = choice;
        this.sink = sink;
        this.clientGone = clientGone;
        this.arrivalNano = arrivalNano;
        this.tokenizer = tokenizer;
        this.pieces = pieces;
        this.metrics = metrics;
        this.kvBytesPerToken = kvBytesPerToken;
        this.stops = new StopSequences(request.stop());
        this.sampler = new Sampler(request.temperature(), request.topP(), choice.seed());
        this.promptTokens = promptIds.length;
        this.previous = promptIds[promptIds.length - 1];
        metrics.running(1);
        cached(promptIds.length);
        this.echoText = choice.echo() ? promptText() : "";
        if (!echoText.isEmpty()) {
            sink.accept(echoText);
        }
    }

    /** The prompt's log-probabilities from its prefill, for an echo with logprobs (null entry first). */
    void promptLogprobs(List<TokenLogprob> logprobs) {
        this.promptLogprobs = logprobs;
    }

    /**
     * Takes the logits that follow the last token fed and returns the token to feed next, or -1
     * when the completion has ended (then nothing more is fed).
     */
    int advance(float[] logits) {
        int next = sampler.next(logits);
        if (next == tokenizer.bos() || next == tokenizer.eos() || choice.stopsAt(next)) {
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
        String piece = pieces.piece(previous, next);
        if (choice.logprobs() >= 0) {
            TokenLogprob lp = TokenLogprob.of(logits, next, choice.logprobs());
            generated.add(new TokenTrace.Entry(next, piece, 0, lp, alternatives(previous, lp)));
        }
        String text = stops.add(piece);
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
        return new CompletionEngine.Completion(echoText + stops.text(), finish, promptTokens, count, choice, trace());
    }

    /** What the log-probabilities cover: the echoed prompt, then the tokens whose text is returned. */
    private TokenTrace trace() {
        if (choice.logprobs() < 0) {
            return null;
        }
        List<TokenTrace.Entry> entries = new ArrayList<>();
        int[] ids = choice.promptIds();
        int offset = 0;
        if (choice.echo()) {
            for (int p = 0; p < ids.length; p++) {
                TokenLogprob lp = promptLogprobs == null ? null : promptLogprobs.get(p);
                String text = promptPiece(p);
                entries.add(new TokenTrace.Entry(ids[p], text, offset, lp, lp == null ? null : alternatives(ids[p - 1], lp)));
                offset += text.codePointCount(0, text.length());
            }
        } else {
            offset = promptText().codePointCount(0, promptText().length());
        }
        // A stop sequence cuts the text: keep the tokens that contributed to what is returned.
        int returned = stops.text().length();
        int at = 0;
        for (TokenTrace.Entry e : generated) {
            if (stops.stopped() && at >= returned) {
                break;
            }
            entries.add(new TokenTrace.Entry(e.id(), e.text(), offset, e.logprob(), e.topTexts()));
            at += e.text().length();
            offset += e.text().codePointCount(0, e.text().length());
        }
        return new TokenTrace(entries);
    }

    private String[] alternatives(int previous, TokenLogprob lp) {
        String[] texts = new String[lp.topIds().length];
        for (int i = 0; i < texts.length; i++) {
            texts[i] = pieces.piece(previous, lp.topIds()[i]);
        }
        return texts;
    }

    /** The text of prompt token p as generation prints it; BOS adds none. */
    private String promptPiece(int p) {
        int[] ids = choice.promptIds();
        if (p == 0) {
            return ids[0] == tokenizer.bos() ? "" : pieces.piece(-1, ids[0]);
        }
        return pieces.piece(ids[p - 1], ids[p]);
    }

    private String promptText() {
        StringBuilder b = new StringBuilder();
        for (int p = 0; p < choice.promptIds().length; p++) {
            b.append(promptPiece(p));
        }
        return b.toString();
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
        long added = kvBytesPerToken * positions;
        metrics.kvBytes(added);
        heldBytes += added;
    }
}
