package org.attnskip.runtime;

import org.attnskip.onnx.BadInputException;

import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
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
    /**
     * Taken here, before any timed span: a fresh JVM's first use of it loads management classes
     * (about 20 ms without the launcher's class-data archive), which the decode span once counted.
     */
    private final ThreadMXBean threads = ManagementFactory.getThreadMXBean();

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
     * {@code decodeRuns / decodeNanos}, prompt tokens not counted. {@code decodeCpuNanos} is the CPU
     * time the calling thread spent over the same span (-1 where the JVM cannot tell): with one
     * intra-op thread ONNX Runtime runs every kernel on it, so on a machine that other jobs load it
     * says what the decode loop cost better than the wall time, which waits for the CPU.
     */
    public record Timing(int prefillTokens, long prefillNanos, int decodeRuns, long decodeNanos, long decodeCpuNanos) {
        static final Timing NONE = new Timing(0, 0, 0, 0, -1);

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
        KvCache cache = session.emptyCache(1, steps + 1L); // every position the run can use: allocated once
        long start = System.nanoTime();
        DecoderSession.Output out;
        try {
            out = session.append(promptIds, cache, LogitRows.LAST);
        } catch (RuntimeException | Error e) {
            cache.close();
            throw e;
        }
        Continuation next = new Continuation(sampler, steps, promptIds, emit);
        int first;
        try {
            first = next.after(out.logits().last(0));
        } catch (RuntimeException | Error e) {
            out.cache().close();
            throw e;
        }
        long decodeStart = next.firstSampled;
        long cpuStart = next.firstSampledCpu;
        int decodeRuns = 0;
        if (first >= 0) {
            decodeRuns = DecodeLoop.decode(session, out.cache(), first, next);
        } else {
            out.cache().close();
        }
        long end = System.nanoTime();
        long cpuEnd = threadCpuNanos();
        // the decode span runs from the prefill's first sample to the last decode run's sample
        Timing timing = new Timing(promptIds.length, decodeStart - start, decodeRuns, decodeRuns == 0 ? 0 : end - decodeStart,
                cpuStart < 0 || cpuEnd < 0 ? -1 : cpuEnd - cpuStart);
        return new Generation(promptIds, Arrays.copyOf(next.generated, next.count), next.stop, text.toString(), timing);
    }

    private long threadCpuNanos() {
        return threads.isCurrentThreadCpuTimeSupported() ? threads.getCurrentThreadCpuTime() : -1;
    }

    /**
     * Samples the next token, emits its text and says whether to feed it: not after BOS or EOS (not
     * emitted), nor once {@code steps} positions are used (emitted, never fed).
     */
    private final class Continuation implements DecodeLoop.NextToken {
        private final Sampler sampler;
        private final int steps;
        private final Consumer<String> emit;
        private final int[] generated;
        private int count;
        private int position;
        private int previous;
        private StopReason stop = StopReason.LENGTH;
        private long firstSampled; // when the prefill's logits were sampled: the decode span starts there
        private long firstSampledCpu; // and the calling thread's CPU time then

        Continuation(Sampler sampler, int steps, int[] promptIds, Consumer<String> emit) {
            this.sampler = sampler;
            this.steps = steps;
            this.emit = emit;
            this.generated = new int[steps];
            this.position = promptIds.length;
            this.previous = promptIds[promptIds.length - 1];
        }

        @Override
        public int after(float[] logits) {
            int next = sampler.next(logits);
            if (firstSampled == 0) {
                firstSampled = System.nanoTime();
                firstSampledCpu = threadCpuNanos();
            }
            if (next == tokenizer.bos() || next == tokenizer.eos()) {
                stop = next == tokenizer.bos() ? StopReason.BOS : StopReason.EOS;
                return -1;
            }
            generated[count++] = next;
            emitPiece(previous, next, emit);
            previous = next;
            if (position >= steps) {
                return -1;
            }
            position++;
            return next;
        }
    }

    private void emitPiece(int prev, int token, Consumer<String> emit) {
        String piece = pieces.piece(prev, token);
        if (!piece.isEmpty()) {
            emit.accept(piece);
        }
    }
}
