import org.attnskip.runtime.DecoderSession;
import org.attnskip.runtime.Device;
import org.attnskip.runtime.KvCache;
import org.attnskip.runtime.OrtSessionFactory;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

/**
 * ONNX Runtime's per-node profile of decode steps at a long context, for several graphs side by
 * side: each graph prefills the same CONTEXT random tokens on an in-place cache, then they take
 * STEPS single-token steps in turn (who goes first alternates), with the session settings that
 * {@code bench} and {@code generate} use. Each graph's profile is written to PREFIX-N_*.json (N its
 * position on the command line); {@code bench/ort-profile-summary.py --by-node} summarises the decode
 * runs. Cheaper than {@code generate --ort-profile} for a long context: one prefill, not a long decode.
 *
 * Usage: java -cp target/attnskip.jar bench/DecodeProfile.java PREFIX CONTEXT STEPS MODEL.onnx...
 */
public final class DecodeProfile {
    public static void main(String[] args) {
        String prefix = args[0];
        int context = Integer.parseInt(args[1]);
        int steps = Integer.parseInt(args[2]);
        List<DecoderSession> sessions = new ArrayList<>();
        for (int g = 3; g < args.length; g++) {
            sessions.add(DecoderSession.open(Path.of(args[g]),
                    OrtSessionFactory.Settings.of(Device.CPU).withProfile(prefix + "-" + (g - 3))));
        }
        SplittableRandom random = new SplittableRandom(0);
        int[] prompt = random.ints(context, 1, 1000).toArray();
        int[] next = random.ints(steps, 1, 1000).toArray();
        List<KvCache> caches = new ArrayList<>();
        for (DecoderSession s : sessions) {
            caches.add(s.append(prompt, s.emptyCache(1, context + steps)).cache());
        }
        double[][] ms = new double[sessions.size()][steps];
        for (int k = 0; k < steps; k++) {
            for (int i = 0; i < sessions.size(); i++) {
                int g = k % 2 == 0 ? i : sessions.size() - 1 - i;
                long start = System.nanoTime();
                caches.set(g, sessions.get(g).append(new int[] {next[k]}, caches.get(g)).cache());
                ms[g][k] = (System.nanoTime() - start) / 1e6;
            }
        }
        for (int g = 0; g < sessions.size(); g++) {
            double[] sorted = ms[g].clone();
            Arrays.sort(sorted);
            System.out.printf("%s: median step %.1f ms (steps: %s)%n", args[g + 3], sorted[steps / 2], Arrays.toString(ms[g]));
            caches.get(g).close();
            sessions.get(g).close(); // writes the profile
        }
    }
}
