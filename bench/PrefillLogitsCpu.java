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
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * Prefill cost with the logits of the last position only against every position's, on a shared
 * machine: each spec MODEL.onnx#last or MODEL.onnx#all (default last) prefills the same random
 * prompt on a fresh cache, the specs taking turns within each round so that they see the same load.
 * ONNX Runtime runs on one intra-op thread, the calling one, so that thread's CPU time is the
 * prefill's compute whatever other jobs take of the wall clock (printed beside it). The first spec
 * is the reference of the ratios; naming a spec twice gives the noise floor. One warm-up round per
 * length is not counted. A graph without logits_to_keep gives every position either way.
 *
 * Usage: java -cp target/attnskip.jar bench/PrefillLogitsCpu.java LENGTHS ROUNDS SPEC...
 *   e.g. 128,512 30 m/model.onnx#all m/model.onnx#last m/model.onnx#all
 * Environment: MAX_TOKEN (largest random token id, default 500).
 */
public final class PrefillLogitsCpu {
    public static void main(String[] args) {
        int[] lengths = Arrays.stream(args[0].split(",")).mapToInt(Integer::parseInt).toArray();
        int rounds = Integer.parseInt(args[1]);
        List<String> specs = Arrays.asList(args).subList(2, args.length);
        int maxToken = Integer.parseInt(System.getenv().getOrDefault("MAX_TOKEN", "500"));
        ThreadMXBean threads = ManagementFactory.getThreadMXBean();
        Map<String, DecoderSession> sessions = new LinkedHashMap<>();
        List<DecoderSession> bySpec = new ArrayList<>();
        List<LogitRows> rows = new ArrayList<>();
        for (String spec : specs) {
            int hash = spec.lastIndexOf('#');
            String model = hash < 0 ? spec : spec.substring(0, hash);
            rows.add(hash < 0 ? LogitRows.LAST : LogitRows.valueOf(spec.substring(hash + 1).toUpperCase(Locale.ROOT)));
            bySpec.add(sessions.computeIfAbsent(model, m ->
                    DecoderSession.open(Path.of(m), OrtSessionFactory.Settings.of(Device.CPU).withThreads(1))));
        }
        SplittableRandom random = new SplittableRandom(1);
        for (int length : lengths) {
            int[] prompt = random.ints(length, 1, maxToken + 1).toArray();
            long[][] cpu = new long[specs.size()][rounds];
            long[][] wall = new long[specs.size()][rounds];
            int[] logitRows = new int[specs.size()];
            for (int round = -1; round < rounds; round++) {
                for (int m = 0; m < specs.size(); m++) {
                    DecoderSession s = bySpec.get(m);
                    KvCache empty = s.emptyCache(1, length); // allocated before the timed span
                    long c0 = threads.getCurrentThreadCpuTime();
                    long w0 = System.nanoTime();
                    DecoderSession.Output out = s.append(prompt, empty, rows.get(m));
                    long c1 = threads.getCurrentThreadCpuTime();
                    long w1 = System.nanoTime();
                    out.cache().close();
                    logitRows[m] = out.logits().seq();
                    if (round >= 0) {
                        cpu[m][round] = c1 - c0;
                        wall[m][round] = w1 - w0;
                    }
                }
            }
            System.out.printf("prefill of %d tokens, %d rounds after 1 warm-up, one intra-op thread%n", length, rounds);
            System.out.println("| spec | logits rows | CPU, median | ratio to the first | wall, median | ratio to the first |");
            System.out.println("|---|---|---|---|---|---|");
            for (int m = 0; m < specs.size(); m++) {
                System.out.printf("| %s | %d | %.2f ms | %.3f | %.2f ms | %.3f |%n", specs.get(m), logitRows[m],
                        median(cpu[m]) / 1e6, median(cpu[m]) / median(cpu[0]), median(wall[m]) / 1e6,
                        median(wall[m]) / median(wall[0]));
            }
        }
        sessions.values().forEach(DecoderSession::close);
    }

    private static double median(long[] values) {
        long[] sorted = values.clone();
        Arrays.sort(sorted);
        int n = sorted.length;
        return n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0;
    }
}
