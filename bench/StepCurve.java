import org.attnskip.runtime.Device;
import org.attnskip.runtime.DecoderSession;
import org.attnskip.runtime.Generator;
import org.attnskip.runtime.ModelLocation;
import org.attnskip.runtime.OrtSessionFactory;
import org.attnskip.runtime.Tokenizer;
import org.attnskip.runtime.TokenizerFiles;

import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.nio.file.Path;

/**
 * The time curve of generate's decode loop in one JVM: greedy generation of 256 positions from "Once
 * upon a time", as `attnskip generate` runs it (the text is kept, not printed), GENERATIONS times in a
 * row; for the last one, one line per text piece: its index, the JVM's uptime in ms when it came, and
 * the calling thread's CPU time in us. The first line says how many pieces (the prompt's) came before
 * the prefill; the decode span that generate's rate covers starts at the first generated piece.
 * Compile it apart (`javac -cp target/attnskip.jar -d DIR bench/StepCurve.java`) rather than running the
 * source file, whose in-memory compilation would warm up the very JVM it measures; bench/step-curve.sh does.
 * Usage: java [JVM options] -cp target/attnskip.jar:DIR StepCurve MODEL_DIR [THREADS [GENERATIONS]]
 */
public final class StepCurve {
    public static void main(String[] args) throws Exception {
        long start = System.nanoTime();
        long uptimeAtStart = ManagementFactory.getRuntimeMXBean().getUptime();
        ThreadMXBean threads = ManagementFactory.getThreadMXBean();
        ModelLocation location = ModelLocation.resolve(Path.of(args[0]), null);
        int intraOp = args.length > 1 ? Integer.parseInt(args[1]) : 1;
        int generations = args.length > 2 ? Integer.parseInt(args[2]) : 1;
        long[] wall = new long[600];
        long[] cpu = new long[600];
        int[] count = {0};
        int prompted;
        OrtSessionFactory.Settings settings = OrtSessionFactory.Settings.of(Device.CPU).withThreads(intraOp);
        try (DecoderSession session = DecoderSession.open(location.modelFile(), settings)) {
            Tokenizer tokenizer = TokenizerFiles.open(location.tokenizerFile(), location.tokenizerKind(), location.vocabSize());
            Generator generator = new Generator(session, tokenizer);
            prompted = tokenizer.encode("Once upon a time").length - 1; // BOS is not echoed
            for (int g = 0; g < generations; g++) {
                count[0] = 0;
                generator.generate("Once upon a time", Generator.Options.greedy(256), piece -> {
                    if (count[0] < wall.length) {
                        cpu[count[0]] = threads.getCurrentThreadCpuTime();
                        wall[count[0]++] = System.nanoTime();
                    }
                });
            }
        }
        StringBuilder out = new StringBuilder();
        out.append("# pieces before the first generated one: ").append(prompted).append('\n');
        for (int i = 0; i < count[0]; i++) {
            out.append(i).append(' ').append(String.format(java.util.Locale.ROOT, "%.3f %.1f",
                    uptimeAtStart + (wall[i] - start) / 1e6, cpu[i] / 1e3)).append('\n');
        }
        System.out.print(out);
    }
}
