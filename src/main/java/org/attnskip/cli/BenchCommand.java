package org.attnskip.cli;

import ai.onnxruntime.OrtSession.SessionOptions.OptLevel;
import org.attnskip.eval.BenchReport;
import org.attnskip.eval.DecodeFloor;
import org.attnskip.eval.LatencyBench;
import org.attnskip.eval.LatencyResult;
import org.attnskip.eval.MemoryBandwidth;
import org.attnskip.eval.ScoringModel;
import org.attnskip.export.ModelDirectory;
import org.attnskip.onnx.BadInputException;
import org.attnskip.onnx.OnnxModelIO;
import org.attnskip.runtime.DecoderSession;
import org.attnskip.runtime.Device;
import org.attnskip.runtime.OrtSessionFactory;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;

@Command(name = "bench",
        description = {"Prefill and decode throughput of a baseline and its variants, each variant timed interleaved "
                + "with the baseline in one run, as Markdown tables; and each model's decode time against the "
                + "memory-bound floor (bytes read per step over the measured read bandwidth).",
                "A MODEL is a model directory or .onnx file, optionally followed by #key=value,... session settings: "
                        + "threads=N, spinning=on|off, opt=none|basic|extended|all, mempattern=on|off, arena=on|off, prepack=on|off. "
                        + "The same graph under two settings compares the settings."})
public final class BenchCommand implements Callable<Integer> {
    @Parameters(arity = "1..*", paramLabel = "MODEL", description = "the baseline first, then the variants")
    List<String> models;

    @Option(names = "--prefill", defaultValue = "128,512", paramLabel = "LIST",
            description = "prompt lengths of the prefill runs (default: ${DEFAULT-VALUE})")
    String prefill;

    @Option(names = "--decode", defaultValue = "256,1024", paramLabel = "LIST",
            description = "contexts of the decode steps (default: ${DEFAULT-VALUE})")
    String decode;

    @Option(names = "--steps", defaultValue = "8", description = "decode steps timed after each context's prefill (default: ${DEFAULT-VALUE})")
    int steps;

    @Option(names = "--warmup", defaultValue = "1", description = "warm-up repetitions, not counted (default: ${DEFAULT-VALUE})")
    int warmup;

    @Option(names = "--repeats", defaultValue = "5", description = "counted repetitions (default: ${DEFAULT-VALUE})")
    int repeats;

    @Option(names = "--noise-floor", description = "also time the baseline against a second session of itself: "
            + "the ratios that identical graphs give in this run")
    boolean noiseFloor;

    @Option(names = "--bandwidth-mb", defaultValue = "256",
            description = "array size per thread of the read-bandwidth measurement, in MB (default: ${DEFAULT-VALUE})")
    int bandwidthMb;

    @Option(names = "--device", defaultValue = "cpu", paramLabel = "cpu|cuda|auto", description = "(default: ${DEFAULT-VALUE})")
    String device;

    @Option(names = "--seed", defaultValue = "0", description = "seed of the random token ids (default: ${DEFAULT-VALUE})")
    long seed;

    @Option(names = "--quiet", description = "no progress on stderr")
    boolean quiet;

    /** Best of this many: on a shared machine most passes are slowed by other processes. */
    private static final int BANDWIDTH_PASSES = 10;

    /** A model argument: the graph, its label, and the session settings it asks for. */
    record Spec(Path file, String label, OrtSessionFactory.Settings settings, int maxPositions) {
    }

    @Override
    public Integer call() {
        if (steps < 1 || repeats < 1 || warmup < 0 || bandwidthMb < 1) {
            throw new BadInputException("--steps, --repeats and --bandwidth-mb must be at least 1, --warmup at least 0");
        }
        List<Integer> prefillLengths = positiveList("--prefill", prefill);
        List<Integer> decodeContexts = positiveList("--decode", decode);
        Device dev = Device.parse(device);
        List<Spec> specs = new ArrayList<>();
        for (String m : models) {
            specs.add(spec(m, dev));
        }
        Spec baselineSpec = specs.get(0);
        List<Spec> variants = new ArrayList<>(specs.subList(1, specs.size()));
        if (noiseFloor || variants.isEmpty()) {
            variants.add(0, new Spec(baselineSpec.file(), baselineSpec.label() + " (again)", baselineSpec.settings(),
                    baselineSpec.maxPositions()));
        }

        int threads = Runtime.getRuntime().availableProcessors();
        double bandwidth = MemoryBandwidth.measure(threads, (long) bandwidthMb << 20, BANDWIDTH_PASSES);

        List<BenchReport.Pair> pairs = new ArrayList<>();
        List<BenchReport.FloorRow> floors = new ArrayList<>();
        LatencyBench.Config asked = new LatencyBench.Config(prefillLengths, decodeContexts, warmup, repeats, steps, seed);
        try (DecoderSession baselineSession = DecoderSession.open(baselineSpec.file(), baselineSpec.settings())) {
            ScoringModel baseline = new ScoringModel(baselineSession);
            int vocab = baselineSession.vocabSize() > 0 ? baselineSession.vocabSize() : 32;
            DecodeFloor baselineFloor = DecodeFloor.of(baselineSpec.file(), baselineSession.kvBytesPerToken());
            for (Spec v : variants) {
                try (DecoderSession variantSession = DecoderSession.open(v.file(), v.settings())) {
                    int positions = Math.min(baselineSpec.maxPositions(), v.maxPositions());
                    LatencyBench.Config config = asked.fittedTo(positions, note -> System.err.println("attnskip: " + note));
                    LatencyResult r = new LatencyBench(config, quiet).run(baseline, new ScoringModel(variantSession), vocab);
                    pairs.add(new BenchReport.Pair(baselineSpec.label(), v.label(), r));
                    if (floors.isEmpty()) {
                        floors.add(new BenchReport.FloorRow(baselineSpec.label(), baselineFloor, measured(r, decodeContexts, false)));
                    }
                    floors.add(new BenchReport.FloorRow(v.label(),
                            DecodeFloor.of(v.file(), variantSession.kvBytesPerToken()), measured(r, decodeContexts, true)));
                }
            }
        }
        System.out.println("Throughput: variant / baseline tokens per second from the same interleaved run, "
                + "and in brackets the ratio of median times (variant / baseline; below 1 is faster). "
                + String.format(Locale.ROOT, "Median of %d repetitions after %d warm-up; decode: %d steps each.",
                repeats, warmup, steps)
                + " A prefill asks for the last position's logits only, as generation does (a graph with"
                + " logits_to_keep computes the LM head for that position alone).");
        System.out.println();
        System.out.print(BenchReport.throughput(prefillLengths, decodeContexts, pairs));
        System.out.println();
        System.out.printf(Locale.ROOT, "Memory-bound floor: read bandwidth %.1f GB/s (%d threads each summing %d MB, best of %d); "
                + "floor = (weights read per step + KV per position x context) / bandwidth.%n", bandwidth / 1e9, threads,
                bandwidthMb, BANDWIDTH_PASSES);
        System.out.println();
        System.out.print(BenchReport.floors(decodeContexts, bandwidth, floors));
        return 0;
    }

    private static List<Double> measured(LatencyResult r, List<Integer> contexts, boolean variant) {
        return contexts.stream().map(c -> BenchReport.decodeMs(r, c, variant)).toList();
    }

    static Spec spec(String arg, Device device) {
        int hash = arg.lastIndexOf('#');
        Path path = Path.of(hash < 0 ? arg : arg.substring(0, hash));
        Path file = OnnxModelIO.resolveModelFile(path);
        OrtSessionFactory.Settings settings = OrtSessionFactory.Settings.of(device);
        if (hash >= 0) {
            for (String kv : arg.substring(hash + 1).split(",")) {
                String[] parts = kv.split("=", 2);
                if (parts.length != 2) {
                    throw new BadInputException("session setting '" + kv + "' in " + arg + " is not key=value");
                }
                settings = setting(settings, parts[0].trim(), parts[1].trim(), arg);
            }
        }
        int positions = ModelDirectory.isModelDirectory(path)
                ? ModelDirectory.read(path).manifest().architecture().maxPositions() : Integer.MAX_VALUE;
        String name = path.toAbsolutePath().normalize().getFileName().toString();
        return new Spec(file, hash < 0 ? name : name + arg.substring(hash), settings, positions);
    }

    private static OrtSessionFactory.Settings setting(OrtSessionFactory.Settings s, String key, String value, String arg) {
        return switch (key) {
            case "threads" -> {
                try {
                    int n = Integer.parseInt(value);
                    if (n < 0) {
                        throw new NumberFormatException();
                    }
                    yield s.withThreads(n);
                } catch (NumberFormatException e) {
                    throw new BadInputException("threads must be 0 (by model size) or more, got '" + value + "' in " + arg);
                }
            }
            case "spinning" -> s.withSpinning(onOff(key, value, arg));
            case "mempattern" -> s.withMemoryPattern(onOff(key, value, arg));
            case "arena" -> s.withCpuArena(onOff(key, value, arg));
            case "prepack" -> s.withPrepacking(onOff(key, value, arg));
            case "opt" -> {
                OptLevel level = EvalOptions.optLevel(value);
                if (level == null) {
                    throw new BadInputException("opt must be none, basic, extended or all, got '" + value + "' in " + arg);
                }
                yield s.withOptimization(level);
            }
            default -> throw new BadInputException("unknown session setting '" + key + "' in " + arg
                    + " (threads, spinning, opt, mempattern, arena, prepack)");
        };
    }

    private static boolean onOff(String key, String value, String arg) {
        return switch (value) {
            case "on" -> true;
            case "off" -> false;
            default -> throw new BadInputException(key + " must be on or off, got '" + value + "' in " + arg);
        };
    }

    private static List<Integer> positiveList(String option, String list) {
        List<Integer> out = new ArrayList<>();
        for (String part : list.split(",")) {
            try {
                int n = Integer.parseInt(part.trim());
                if (n < 1) {
                    throw new NumberFormatException();
                }
                out.add(n);
            } catch (NumberFormatException e) {
                throw new BadInputException(option + " must be a comma-separated list of positive integers, got '" + list + "'");
            }
        }
        return out;
    }
}
