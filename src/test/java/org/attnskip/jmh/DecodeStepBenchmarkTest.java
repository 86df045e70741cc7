package org.attnskip.jmh;

import org.attnskip.export.SyntheticWeights;
import org.attnskip.reference.ReferenceLlama;
import org.attnskip.runtime.DecoderSession;
import org.attnskip.runtime.Device;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.openjdk.jmh.results.RunResult;
import org.openjdk.jmh.runner.Runner;
import org.openjdk.jmh.runner.RunnerException;
import org.openjdk.jmh.runner.options.OptionsBuilder;
import org.openjdk.jmh.runner.options.TimeValue;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.Collection;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The benchmark decodes what the reference decodes, and JMH finds and runs it (one short iteration; nothing timed is asserted). */
class DecodeStepBenchmarkTest {
    @TempDir
    Path tmp;

    @Test
    void benchmarkLoopGeneratesTheReferenceGreedyTokensOnBothGraphs() {
        int prompt = DecodeStepBenchmark.PROMPT;
        int steps = 24;
        int[] promptIds = new int[prompt];
        Arrays.setAll(promptIds, i -> i + 1);
        int[] reference = new ReferenceLlama(SyntheticWeights.generate(DecodeStepBenchmark.SHAPE, 20240501))
                .generateGreedy(promptIds, prompt + steps);
        // the reference stops at BOS (the benchmark's loop does not) and samples once more after the last step
        int[] expected = Arrays.copyOfRange(reference, prompt, Math.min(reference.length, prompt + steps));
        assertTrue(expected.length > 0, "the reference generated nothing");
        for (String graph : new String[] {"fused", "unfused"}) {
            try (DecoderSession s = DecoderSession.open(DecodeStepBenchmark.export(DecodeStepBenchmark.SHAPE, graph, tmp), Device.CPU)) {
                int[] got = DecodeStepBenchmark.decode(s, prompt, steps);
                assertArrayEquals(expected, Arrays.copyOf(got, expected.length), graph);
            }
        }
    }

    @Test
    void jmhRunsTheBenchmarkInProcess() throws RunnerException {
        Collection<RunResult> results = new Runner(new OptionsBuilder()
                .include(DecodeStepBenchmark.class.getName())
                .param("graph", "fused")
                .forks(0)
                .warmupIterations(0)
                .measurementIterations(1)
                .measurementTime(TimeValue.milliseconds(50))
                .shouldFailOnError(true)
                .build()).run();
        assertEquals(1, results.size());
        double score = results.iterator().next().getPrimaryResult().getScore();
        assertTrue(score > 0 && Double.isFinite(score), "score " + score);
    }
}
