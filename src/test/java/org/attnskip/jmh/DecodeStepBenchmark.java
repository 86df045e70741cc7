package org.attnskip.jmh;

import org.attnskip.export.ExportDtype;
import org.attnskip.export.FusedLlamaExporter;
import org.attnskip.export.LlamaOnnxExporter;
import org.attnskip.export.LlamaWeightSource;
import org.attnskip.export.SyntheticWeights;
import org.attnskip.onnx.OnnxModelIO;
import org.attnskip.runtime.DecoderSession;
import org.attnskip.runtime.Device;
import org.attnskip.runtime.KvCache;
import org.attnskip.runtime.OrtSessionFactory;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.concurrent.TimeUnit;

/**
 * The decode loop of {@code generate} without tokenizer and printing: a prompt of {@link #PROMPT}
 * tokens prefilled, then {@link #STEPS} greedy single-token runs over the KV cache, in one JVM that
 * JMH has warmed up. Set against a fresh {@code generate} process, it separates ONNX Runtime's and
 * the warmed Java side's time per step from the JVM's warm-up. The model is synthetic (seeded random
 * weights) in the stories260K shape, exported as the unfused and the fused graph, so nothing outside
 * the repository is needed. Run: see docs/BENCHMARKS.md, "Where a decode step's time goes".
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(1)
public class DecodeStepBenchmark {
    /** stories260K's shape: 5 layers, dim 64, 8 heads of size 8 (4 KV heads), vocab 512. */
    public static final String SHAPE = "layers=5,hidden=64,heads=8,kv_heads=4,ffn=172,vocab=512,seq=512";
    static final int PROMPT = 8;
    static final int STEPS = 64;

    @Param({"fused", "unfused"})
    public String graph;

    /** Intra-op threads; 0 resolves as generate's default does. */
    @Param({"1"})
    public int threads;

    private Path dir;
    private DecoderSession session;

    @Setup(Level.Trial)
    public void open() throws IOException {
        dir = Files.createTempDirectory("attnskip-jmh");
        session = DecoderSession.open(export(SHAPE, graph, dir), OrtSessionFactory.Settings.of(Device.CPU).withThreads(threads));
    }

    @TearDown(Level.Trial)
    public void close() throws IOException {
        session.close();
        try (var files = Files.list(dir)) {
            for (Path f : files.toList()) {
                Files.delete(f);
            }
        }
        Files.delete(dir);
    }

    /** One generation: returns the greedy tokens, so that the work cannot be optimised away (and a test can check them). */
    @Benchmark
    public int[] decode64() {
        return decode(session, PROMPT, STEPS);
    }

    /** Prefill of tokens 1..prompt, then {@code steps} greedy decode runs; the generated ids. */
    static int[] decode(DecoderSession session, int prompt, int steps) {
        long[] ids = new long[prompt];
        long[] positions = new long[prompt];
        for (int i = 0; i < prompt; i++) {
            ids[i] = i + 1;
            positions[i] = i;
        }
        KvCache cache = session.emptyCache(1, prompt + steps);
        int[] out = new int[steps];
        try {
            DecoderSession.Output o = session.run(new long[][] {ids}, new long[][] {ones(prompt)}, new long[][] {positions}, cache);
            cache = o.cache();
            for (int s = 0; s < steps; s++) {
                out[s] = argmax(o.logits().last(0));
                int pos = prompt + s;
                o = session.run(new long[][] {{out[s]}}, new long[][] {ones(pos + 1)}, new long[][] {{pos}}, cache);
                cache = o.cache();
            }
        } finally {
            cache.close();
        }
        return out;
    }

    static Path export(String shape, String graph, Path dir) {
        LlamaWeightSource weights = SyntheticWeights.source(shape, 20240501);
        Path file = dir.resolve(graph + ".onnx");
        OnnxModelIO.save(graph.equals("fused") ? FusedLlamaExporter.export(weights, ExportDtype.FLOAT)
                : LlamaOnnxExporter.export(weights, ExportDtype.FLOAT), null, file, false);
        return file;
    }

    private static long[] ones(int n) {
        long[] a = new long[n];
        Arrays.fill(a, 1);
        return a;
    }

    private static int argmax(float[] v) {
        int best = 0;
        for (int i = 1; i < v.length; i++) {
            if (v[i] > v[best]) {
                best = i;
            }
        }
        return best;
    }
}
