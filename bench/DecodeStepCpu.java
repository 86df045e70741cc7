import org.attnskip.runtime.DecoderSession;
import org.attnskip.runtime.Device;
import org.attnskip.runtime.KvCache;
import org.attnskip.runtime.LogitRows;
import org.attnskip.runtime.OrtSessionFactory;

import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

/**
 * Decode-step cost of several graphs on a shared machine: each graph prefills the same random
 * prompt of CONTEXT tokens, then they take STEPS decode steps round robin (one step of each per
 * round, so they see the same load). ONNX Runtime runs on one intra-op thread, which is the
 * calling thread, so that thread's CPU time is the step's compute, whatever other jobs take of
 * the wall clock; the wall time is printed beside it. The first graph is the reference of the
 * ratios; naming it twice gives the noise floor. The first WARMUP rounds are not counted.
 *
 * With PREFILL_RUNS=N, the prefill of those CONTEXT tokens is timed the same way first: N rounds
 * (after one warm-up round), each graph prefilling on a fresh cache in turn, asking for the last
 * position's logits only as generation does (a graph with logits_to_keep skips the others' LM head).
 *
 * Usage: java -cp target/attnskip.jar bench/DecodeStepCpu.java CONTEXT STEPS MODEL.onnx...
 * Environment: WARMUP (default 10), MAX_TOKEN (largest random token id, default 500), PREFILL_RUNS (default 0).
 */
public final class DecodeStepCpu {
    public static void main(String[] args) {
        int context = Integer.parseInt(args[0]);
        int steps = Integer.parseInt(args[1]);
        List<String> models = Arrays.asList(args).subList(2, args.length);
        int warmup = Integer.parseInt(System.getenv().getOrDefault("WARMUP", "10"));
        int maxToken = Integer.parseInt(System.getenv().getOrDefault("MAX_TOKEN", "500"));
        ThreadMXBean threads = ManagementFactory.getThreadMXBean();
        SplittableRandom random = new SplittableRandom(1);
        int[] prompt = random.ints(context, 1, maxToken + 1).toArray();
        List<DecoderSession> sessions = new ArrayList<>();
        List<KvCache> caches = new ArrayList<>();
        for (String model : models) {
            DecoderSession s = DecoderSession.open(Path.of(model), OrtSessionFactory.Settings.of(Device.CPU).withThreads(1));
            sessions.add(s);
            caches.add(s.append(prompt, s.growingCache(1), LogitRows.LAST).cache());
        }
        int prefillRuns = Integer.parseInt(System.getenv().getOrDefault("PREFILL_RUNS", "0"));
        if (prefillRuns > 0) {
            long[][] prefillCpu = new long[models.size()][prefillRuns];
            long[][] prefillWall = new long[models.size()][prefillRuns];
            for (int round = -1; round < prefillRuns; round++) {
                for (int m = 0; m < models.size(); m++) {
                    long c0 = threads.getCurrentThreadCpuTime();
                    long w0 = System.nanoTime();
                    KvCache filled = sessions.get(m).append(prompt, sessions.get(m).growingCache(1), LogitRows.LAST).cache();
                    long c1 = threads.getCurrentThreadCpuTime();
                    long w1 = System.nanoTime();
                    filled.close();
                    if (round >= 0) {
                        prefillCpu[m][round] = c1 - c0;
                        prefillWall[m][round] = w1 - w0;
                    }
                }
            }
            System.out.printf("prefill of %d tokens, %d rounds after 1 warm-up, one intra-op thread%n", context, prefillRuns);
            table(models, prefillCpu, prefillWall, "prefill");
        }
        long[][] cpu = new long[models.size()][steps];
        long[][] wall = new long[models.size()][steps];
        for (int round = -warmup; round < steps; round++) {
            int[] token = {random.nextInt(1, maxToken + 1)};
            for (int m = 0; m < models.size(); m++) {
                long c0 = threads.getCurrentThreadCpuTime();
                long w0 = System.nanoTime();
                DecoderSession.Output out = sessions.get(m).append(token, caches.get(m), LogitRows.LAST);
                long c1 = threads.getCurrentThreadCpuTime();
                long w1 = System.nanoTime();
                caches.set(m, out.cache());
                if (round >= 0) {
                    cpu[m][round] = c1 - c0;
                    wall[m][round] = w1 - w0;
                }
            }
        }
        System.out.printf("decode steps at context %d..%d, %d rounds after %d warm-up, one intra-op thread%n", context,
                context + warmup + steps, steps, warmup);
        table(models, cpu, wall, "step");
        caches.forEach(KvCache::close);
        sessions.forEach(DecoderSession::close);
    }

    private static void table(List<String> models, long[][] cpu, long[][] wall, String unit) {
        System.out.printf("| model | CPU per %s, median | ratio to the first | wall per %s, median | ratio to the first |%n", unit, unit);
        System.out.println("|---|---|---|---|---|");
        for (int m = 0; m < models.size(); m++) {
            System.out.printf("| %s | %.3f ms | %.3f | %.3f ms | %.3f |%n", models.get(m), median(cpu[m]) / 1e6,
                    median(cpu[m]) / median(cpu[0]), median(wall[m]) / 1e6, median(wall[m]) / median(wall[0]));
        }
    }

    private static double median(long[] values) {
        long[] sorted = values.clone();
        Arrays.sort(sorted);
        int n = sorted.length;
        return n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0;
    }
}
