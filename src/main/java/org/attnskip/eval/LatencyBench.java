package org.attnskip.eval;

import org.attnskip.runtime.DecoderSession;
import org.attnskip.runtime.KvCache;
import org.attnskip.runtime.LogitRows;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * Measures prefill and decode latency of a baseline and a variant in one run. Every repetition
 * measures both models at every point, alternating which goes first so that neither always runs on
 * a warmer cache; warm-up repetitions are run the same way and thrown away. A prefill time is one
 * run of the prompt on an empty cache asking, as generation does, for the last position's logits only
 * ({@link LogitRows#LAST}: a graph with {@code logits_to_keep} skips the other positions' LM head); a decode time is one single-token step after a (not timed)
 * prefill of the context. The timed span is the whole {@link DecoderSession#run} call, logits copy
 * included. All models get the same random token ids.
 */
public final class LatencyBench {
    public record Config(List<Integer> prefillLengths, List<Integer> decodeContexts, int warmup, int repeats,
                         int decodeSteps, long seed) {

        /** Without the points that need more positions than the model has. */
        public Config fittedTo(int maxPositions, java.util.function.Consumer<String> note) {
            List<Integer> prefill = prefillLengths.stream().filter(n -> n <= maxPositions).toList();
            List<Integer> decode = decodeContexts.stream().filter(n -> n + decodeSteps <= maxPositions).toList();
            prefillLengths.stream().filter(n -> n > maxPositions).forEach(n ->
                    note.accept("skipping prefill of " + n + " tokens: the model has " + maxPositions + " positions"));
            decodeContexts.stream().filter(n -> n + decodeSteps > maxPositions).forEach(n ->
                    note.accept("skipping decode at context " + n + ": it needs " + (n + decodeSteps)
                            + " positions, the model has " + maxPositions));
            return new Config(prefill, decode, warmup, repeats, decodeSteps, seed);
        }
    }

    private final Config config;
    private final boolean quiet;

    public LatencyBench(Config config, boolean quiet) {
        this.config = config;
        this.quiet = quiet;
    }

    public LatencyResult run(ScoringModel baseline, ScoringModel variant, int vocab) {
        ScoringModel[] models = {baseline, variant};
        int largest = 0;
        for (int n : config.prefillLengths()) {
            largest = Math.max(largest, n);
        }
        for (int n : config.decodeContexts()) {
            largest = Math.max(largest, n + config.decodeSteps());
        }
        int[] ids = new SplittableRandom(config.seed()).ints(largest, 3, Math.max(4, vocab)).toArray();

        List<List<List<Long>>> prefill = table(config.prefillLengths().size());
        List<List<List<Long>>> decode = table(config.decodeContexts().size());
        int total = (config.warmup() + config.repeats()) * (config.prefillLengths().size() + config.decodeContexts().size());
        try (Progress progress = Progress.start("latency", total, quiet)) {
            for (int r = 0; r < config.warmup() + config.repeats(); r++) {
                boolean keep = r >= config.warmup();
                int[] order = r % 2 == 0 ? new int[] {0, 1} : new int[] {1, 0};
                for (int i = 0; i < config.prefillLengths().size(); i++) {
                    for (int m : order) {
                        long t = timePrefill(models[m], ids, config.prefillLengths().get(i));
                        if (keep) {
                            prefill.get(i).get(m).add(t);
                        }
                    }
                    progress.step();
                }
                for (int i = 0; i < config.decodeContexts().size(); i++) {
                    for (int m : order) {
                        List<Long> steps = timeDecode(models[m], ids, config.decodeContexts().get(i), config.decodeSteps());
                        if (keep) {
                            decode.get(i).get(m).addAll(steps);
                        }
                    }
                    progress.step();
                }
            }
        }
        List<LatencyPoint> prefillPoints = new ArrayList<>();
        for (int i = 0; i < config.prefillLengths().size(); i++) {
            prefillPoints.add(LatencyPoint.of("prefill", config.prefillLengths().get(i),
                    Timings.ofNanos(prefill.get(i).get(0)), Timings.ofNanos(prefill.get(i).get(1))));
        }
        List<LatencyPoint> decodePoints = new ArrayList<>();
        for (int i = 0; i < config.decodeContexts().size(); i++) {
            decodePoints.add(LatencyPoint.of("decode", config.decodeContexts().get(i),
                    Timings.ofNanos(decode.get(i).get(0)), Timings.ofNanos(decode.get(i).get(1))));
        }
        return new LatencyResult(config.warmup(), config.repeats(), config.decodeSteps(), prefillPoints, decodePoints,
                largest, baseline.session().kvBytesPerToken() * largest,
                variant.session().kvBytesPerToken() * largest,
                // one reading: both sessions share this process, so it cannot be split by variant
                PeakMemory.read());
    }

    private static List<List<List<Long>>> table(int points) {
        List<List<List<Long>>> t = new ArrayList<>();
        for (int i = 0; i < points; i++) {
            t.add(List.of(new ArrayList<>(), new ArrayList<>()));
        }
        return t;
    }

    private static long timePrefill(ScoringModel model, int[] ids, int length) {
        int[] prompt = java.util.Arrays.copyOf(ids, length);
        KvCache empty = model.session().emptyCache(1);
        long start = System.nanoTime();
        DecoderSession.Output out = model.append(prompt, empty, LogitRows.LAST);
        long elapsed = System.nanoTime() - start;
        out.cache().close();
        return elapsed;
    }

    private static List<Long> timeDecode(ScoringModel model, int[] ids, int context, int steps) {
        DecoderSession session = model.session();
        KvCache cache = model.append(java.util.Arrays.copyOf(ids, context), session.emptyCache(1), LogitRows.LAST).cache();
        List<Long> times = new ArrayList<>();
        for (int s = 0; s < steps; s++) {
            int[] step = {ids[context + s]};
            long start = System.nanoTime();
            DecoderSession.Output out = model.append(step, cache, LogitRows.LAST);
            times.add(System.nanoTime() - start);
            cache = out.cache();
        }
        cache.close();
        return times;
    }
}
