package org.attnskip.runtime;

import org.attnskip.onnx.BadInputException;

import java.util.Arrays;
import java.util.function.Consumer;

/**
 * The generation loop of llama2.c's run.c over a {@link DecoderSession}: the prompt (BOS first) is
 * prefilled in one run, then one token per run with the KV cache. Stops when the model emits EOS,
 * or BOS (which delimits stories in llama2.c's models), or when {@code steps} positions have been
 * used. Each piece of text is handed to the sink as soon as it is known: the prompt's pieces first
 * (as run.c echoes them), then each generated one.
 */
public final class Generator {
    private final DecoderSession session;
    private final Tokenizer tokenizer;
    private final TextPieces pieces;

    public Generator(DecoderSession session, Tokenizer tokenizer) {
        this.session = session;
        this.tokenizer = tokenizer;
        this.pieces = new TextPieces(tokenizer);
    }

    /**
     * @param steps       positions to use, prompt included and BOS not counted, as run.c's {@code -n}
     * @param temperature 0 for greedy
     * @param topP        nucleus size; 0 or 1 turns it off
     */
    public record Options(int steps, float temperature, float topP, long seed) {
        public static Options greedy(int steps) {
            return new Options(steps, 0f, 0f, 0);
        }
    }

    public enum StopReason { EOS, BOS, LENGTH }

    /**
     * What a run produced: the prompt ids (BOS first), the generated ids, the text sent to the sink,
     * and how long the model runs took.
     */
    public record Generation(int[] promptIds, int[] generatedIds, StopReason stop, String text, Timing timing) {
    }

    /**
     * Wall time of the prefill run (the whole prompt at once, first sampling included) and of the
     * single-token decode runs after it, each with its sampling and text piece: the decode rate is
     * {@code decodeRuns / decodeNanos}, prompt tokens not counted.
     */
    public record Timing(int prefillTokens, long prefillNanos, int decodeRuns, long decodeNanos) {
        static final Timing NONE = new Timing(0, 0, 0, 0);

        /** Decode tokens per second, or NaN when no decode run happened. */
        public double decodeTokensPerSecond() {
            return decodeRuns == 0 ? Double.NaN : decodeRuns / (decodeNanos / 1e9);
        }
    }

    public Generation generate(String prompt, Options options, Consumer<String> sink) {
        return generate(tokenizer.encode(prompt), options, sink);
    }

    public Generation generate(int[] promptIds, Options options, Consumer<String> sink) {
        if (promptIds.length == 0) {
            throw new BadInputException("the prompt is empty and the tokenizer has no BOS token to start from");
        }
        if (options.steps() <= 0) {
            throw new BadInputException("the number of steps must be positive, got " + options.steps());
        }
        StringBuilder text = new StringBuilder();
        Consumer<String> emit = piece -> {
            text.append(piece);
            sink.accept(piece);
        };
        int steps = options.steps();
        // run.c feeds the prompt one position per step, so a prompt longer than the steps is cut short.
        int echoed = Math.min(promptIds.length, steps + 1);
        for (int i = 1; i < echoed; i++) {
            emitPiece(promptIds[i - 1], promptIds[i], emit);
        }
        if (promptIds.length > steps) {
            return new Generation(promptIds, new int[0], StopReason.LENGTH, text.toString(), Timing.NONE);
        }

        Sampler sampler = new Sampler(options.temperature(), options.topP(), options.seed());
        int[] generated = new int[steps];
        int count = 0;
        StopReason stop = StopReason.LENGTH;
        KvCache cache = session.emptyCache(1, steps + 1L); // every position the run can use: allocated once
        long prefillNanos = 0;
        int decodeRuns = 0;
        long decodeStart = 0;
        long end = 0;
        try {
            long start = System.nanoTime();
            DecoderSession.Output out = session.run(new long[][] {toLongs(promptIds)}, new long[][] {ones(promptIds.length)},
                    new long[][] {range(0, promptIds.length)}, cache);
            cache = out.cache();
            float[] logits = out.logits().last(0);
            int pos = promptIds.length;
            int prev = promptIds[promptIds.length - 1];
            while (true) {
                int next = sampler.next(logits);
                if (decodeStart == 0) {
                    decodeStart = System.nanoTime();
                    prefillNanos = decodeStart - start;
                }
                if (next == tokenizer.bos()) {
                    stop = StopReason.BOS;
                    break;
                }
                if (next == tokenizer.eos()) {
                    stop = StopReason.EOS;
                    break;
                }
                generated[count++] = next;
                emitPiece(prev, next, emit);
                prev = next;
                if (pos >= steps) {
                    break;
                }
                out = session.run(new long[][] {{next}}, new long[][] {ones(pos + 1)}, new long[][] {{pos}}, cache);
                cache = out.cache();
                logits = out.logits().last(0);
                pos++;
                decodeRuns++;
            }
            end = System.nanoTime();
        } finally {
            cache.close();
        }
        // the decode span runs from the prefill's first sample to the last decode run's sample
        Timing timing = new Timing(promptIds.length, prefillNanos, decodeRuns, decodeRuns == 0 ? 0 : end - decodeStart);
        return new Generation(promptIds, Arrays.copyOf(generated, count), stop, text.toString(), timing);
    }

    private void emitPiece(int prev, int token, Consumer<String> emit) {
        String piece = pieces.piece(prev, token);
        if (!piece.isEmpty()) {
            emit.accept(piece);
        }
    }

    private static long[] toLongs(int[] ids) {
        long[] out = new long[ids.length];
        for (int i = 0; i < ids.length; i++) {
            out[i] = ids[i];
        }
        return out;
    }

    private static long[] ones(int n) {
        long[] out = new long[n];
        Arrays.fill(out, 1);
        return out;
    }

    private static long[] range(int from, int to) {
        long[] out = new long[to - from];
        for (int i = 0; i < out.length; i++) {
            out[i] = from + i;
        }
        return out;
    }
}
