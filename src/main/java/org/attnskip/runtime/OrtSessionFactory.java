package org.attnskip.runtime;

import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtLoggingLevel;
import ai.onnxruntime.OrtProvider;
import ai.onnxruntime.OrtSession;
import ai.onnxruntime.OrtSession.SessionOptions;
import ai.onnxruntime.OrtSession.SessionOptions.OptLevel;
import org.attnskip.onnx.BadInputException;

import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Opens ONNX Runtime sessions on the chosen device. {@code cuda} fails with one line when the CUDA
 * execution provider cannot load (the CPU-only build, or no CUDA 12 on the machine); {@code auto}
 * then falls back to the CPU and says so in {@link OpenedSession#fallbackNote()}.
 */
public final class OrtSessionFactory {
    static final String CUDA_UNAVAILABLE = "CUDA execution provider is not available: "
            + "build with -Pgpu and install CUDA 12 and cuDNN 9, or use --device cpu";

    private OrtSessionFactory() {
    }

    /**
     * How a session runs. The defaults are what measured fastest for decoding on a 2-core machine,
     * idle and shared with other work (README, Benchmarks): see {@link #automatic}.
     *
     * @param intraOpThreads 0 to choose by the machine's load and the model's size ({@link #automatic})
     * @param spinning       whether idle intra-op threads spin waiting for work (ONNX Runtime's default)
     *                       or sleep (ours, unless {@link #automatic} turns it on): a spinning thread holds a core that the other thread, or
     *                       another process, needs; on the stories15M shape with 2 threads, decode
     *                       steps took 1.5 to 3 times as long with spinning
     * @param memoryPattern  ONNX Runtime's memory pattern planning (its default: on)
     * @param cpuArena       ONNX Runtime's CPU memory arena (its default: on)
     * @param profilePrefix  null, or the file prefix of ONNX Runtime's per-node profile (a JSON trace)
     * @param prepacking     whether ONNX Runtime repacks constant MatMul weights into its GEMM kernels'
     *                       layout when the session opens (its default: on; off is
     *                       {@code session.disable_prepacking}, for measuring the single-row products of decode)
     * @param shortRun       the process makes one short run and ends (generate): its JIT compiler is still
     *                       compiling while the run decodes, so see {@link #automatic} for small models
     */
    public record Settings(Device device, int intraOpThreads, OptLevel optimization, boolean spinning,
                           boolean memoryPattern, boolean cpuArena, String profilePrefix, boolean prepacking,
                           boolean shortRun) {
        public Settings(Device device, int intraOpThreads, OptLevel optimization) {
            this(device, intraOpThreads, optimization, false, true, true, null, true, false);
        }

        public static Settings of(Device device) {
            return new Settings(device, 0, OptLevel.ALL_OPT);
        }

        public Settings withThreads(int threads) {
            return new Settings(device, threads, optimization, spinning, memoryPattern, cpuArena, profilePrefix, prepacking, shortRun);
        }

        public Settings withOptimization(OptLevel level) {
            return new Settings(device, intraOpThreads, level, spinning, memoryPattern, cpuArena, profilePrefix, prepacking, shortRun);
        }

        public Settings withSpinning(boolean on) {
            return new Settings(device, intraOpThreads, optimization, on, memoryPattern, cpuArena, profilePrefix, prepacking, shortRun);
        }

        public Settings withMemoryPattern(boolean on) {
            return new Settings(device, intraOpThreads, optimization, spinning, on, cpuArena, profilePrefix, prepacking, shortRun);
        }

        public Settings withCpuArena(boolean on) {
            return new Settings(device, intraOpThreads, optimization, spinning, memoryPattern, on, profilePrefix, prepacking, shortRun);
        }

        public Settings withProfile(String prefix) {
            return new Settings(device, intraOpThreads, optimization, spinning, memoryPattern, cpuArena, prefix, prepacking, shortRun);
        }

        /** For a process that decodes once and ends ({@code generate}): see {@link #automatic}. */
        public Settings forShortRun() {
            return new Settings(device, intraOpThreads, optimization, spinning, memoryPattern, cpuArena, profilePrefix, prepacking, true);
        }

        public Settings withPrepacking(boolean on) {
            return new Settings(device, intraOpThreads, optimization, spinning, memoryPattern, cpuArena, profilePrefix, on, shortRun);
        }
    }

    /**
     * Intra-op threads for a model when none are asked for: one below {@link #SMALL_MODEL_BYTES} of
     * weights, where a step's few microseconds of work per node are shorter than handing half of it
     * to another thread, else every core. Measured interleaved on 2 cores: stories260K (1 MB) and
     * stories-deep12 (5 MB) decode as fast or faster on one thread; the stories15M shape (58 MB)
     * decodes in 0.43-0.45 of one thread's time on two (without spinning).
     */
    public static int threadsFor(Path modelFile) {
        return modelBytes(modelFile) < SMALL_MODEL_BYTES ? 1 : Runtime.getRuntime().availableProcessors();
    }

    /** Intra-op threads and whether they spin: what {@link Settings#intraOpThreads} 0 resolves to. */
    public record Threading(int threads, boolean spinning) {
    }

    /**
     * The threading a session gets when no thread count is asked for. Where the machine has a core to
     * spare (a 1-minute load average below the number of cores; our own benchmark runs alone keep it
     * near 1-2 on 2 cores), every core, spinning: measured interleaved on the otherwise idle 2-core
     * machine, two spinning threads took 0.75-0.80 of the time of any other choice on stories260K,
     * stories-deep12 and the stories15M shape. On a busy machine, {@link #threadsFor} and no spinning:
     * there a spinning thread holds a core another process needs, and decode steps took 1.5 to 4 times
     * as long as without spinning.
     *
     * @param loadAverage the system's 1-minute load average; negative where the system does not tell
     */
    public static Threading automatic(Path modelFile, double loadAverage, int cores) {
        return automatic(modelFile, loadAverage, cores, false);
    }

    /**
     * As {@link #automatic(Path, double, int)}, except that a short run (a fresh {@code generate}
     * process) of a model below {@link #SMALL_MODEL_BYTES} takes one thread, not spinning, even on an
     * idle machine: its JIT compiler thread needs the second core while the few hundred steps run.
     * Measured as fresh processes taking turns on the idle 2-core machine (README, "Performance
     * settings"): one thread gave 1.13x the decode rate and 0.92x the process CPU on stories260K,
     * 1.01x and 0.86x on stories-deep12.
     */
    public static Threading automatic(Path modelFile, double loadAverage, int cores, boolean shortRun) {
        if (shortRun && modelBytes(modelFile) < SMALL_MODEL_BYTES) {
            return new Threading(1, false);
        }
        boolean idle = loadAverage >= 0 && loadAverage < cores && cores > 1;
        return idle ? new Threading(cores, true) : new Threading(threadsFor(modelFile), false);
    }

    static final long SMALL_MODEL_BYTES = 16L << 20;

    /** The graph file and its external data file under the usual names: the weights, give or take the graph itself. */
    static long modelBytes(Path modelFile) {
        long bytes = 0;
        try (var files = Files.list(modelFile.toAbsolutePath().getParent())) {
            String name = modelFile.getFileName().toString();
            for (Path p : files.toList()) {
                String n = p.getFileName().toString();
                // NAME.N.data: a single-file save over an earlier one picks a fresh data file name
                if (n.equals(name) || n.equals(name + ".data") || n.equals(name + "_data")
                        || n.matches(java.util.regex.Pattern.quote(name) + "\\.\\d+\\.data")) {
                    bytes += Files.size(p);
                }
            }
        } catch (java.io.IOException e) {
            return Long.MAX_VALUE; // unreadable here means the session will say so; threads do not matter
        }
        return bytes;
    }

    /** The process's one ONNX Runtime environment, whoever made it first; sessions set their own log level. */
    public static OrtEnvironment environment() {
        return OrtEnvironment.getEnvironment();
    }

    public static OpenedSession open(Path modelFile, Device device) {
        return open(modelFile, Settings.of(device));
    }

    public static OpenedSession open(Path modelFile, Settings settings) {
        if (!Files.isRegularFile(modelFile)) {
            throw new BadInputException("no such model file: " + modelFile);
        }
        OrtEnvironment env = environment();
        if (settings.device() == Device.CPU) {
            return new OpenedSession(create(env, modelFile, settings, false), Device.CPU, null);
        }
        String cudaProblem = cudaProblem();
        if (cudaProblem == null) {
            try {
                return new OpenedSession(create(env, modelFile, settings, true), Device.CUDA, null);
            } catch (CudaLoadFailure e) {
                cudaProblem = e.getMessage();
            }
        }
        if (settings.device() == Device.CUDA) {
            throw new BadInputException(cudaProblem);
        }
        return new OpenedSession(create(env, modelFile, settings, false), Device.CPU,
                "device auto: CUDA is not available here, running on the CPU");
    }

    /** Null when the CUDA provider is compiled into this ONNX Runtime build, else the reason it is not. */
    static String cudaProblem() {
        return OrtEnvironment.getAvailableProviders().contains(OrtProvider.CUDA) ? null : CUDA_UNAVAILABLE;
    }

    private static OrtSession create(OrtEnvironment env, Path modelFile, Settings settings, boolean cuda) {
        try (SessionOptions options = new SessionOptions()) {
            options.setOptimizationLevel(settings.optimization());
            options.setSessionLogLevel(OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR);
            Threading threading = settings.intraOpThreads() > 0
                    ? new Threading(settings.intraOpThreads(), settings.spinning())
                    : automatic(modelFile, ManagementFactory.getOperatingSystemMXBean().getSystemLoadAverage(),
                            Runtime.getRuntime().availableProcessors(), settings.shortRun());
            options.setIntraOpNumThreads(threading.threads());
            options.addConfigEntry("session.intra_op.allow_spinning", threading.spinning() || settings.spinning() ? "1" : "0");
            options.setMemoryPatternOptimization(settings.memoryPattern());
            options.setCPUArenaAllocator(settings.cpuArena());
            if (!settings.prepacking()) {
                options.addConfigEntry("session.disable_prepacking", "1");
            }
            if (settings.profilePrefix() != null) {
                options.enableProfiling(settings.profilePrefix());
            }
            if (cuda) {
                try {
                    options.addCUDA(0);
                } catch (OrtException e) {
                    // The provider is in the build but its libraries (CUDA 12, cuDNN) or a GPU are missing.
                    throw new CudaLoadFailure(CUDA_UNAVAILABLE + " (" + firstLine(e.getMessage()) + ")");
                }
            }
            return env.createSession(modelFile.toString(), options);
        } catch (OrtException e) {
            throw new BadInputException("ONNX Runtime cannot load " + modelFile + ": " + firstLine(e.getMessage()), e);
        }
    }

    static String firstLine(String message) {
        if (message == null) {
            return "unknown error";
        }
        int nl = message.indexOf('\n');
        return (nl < 0 ? message : message.substring(0, nl)).trim();
    }

    private static final class CudaLoadFailure extends RuntimeException {
        CudaLoadFailure(String message) {
            super(message);
        }
    }
}
