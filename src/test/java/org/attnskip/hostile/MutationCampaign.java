package org.attnskip.hostile;

import ai.onnx.proto.OnnxMl.ModelProto;
import org.attnskip.cli.Main;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.BiFunction;

/**
 * Seeded mutations of the seed files in src/test/resources/seeds run through the command line's
 * entry point in this process ({@link Main#run}), checking each run: exit 0 or 2 only, no stack
 * trace, on exit 2 one line, nothing left at (or beside) the output after a failure, the input's bytes
 * unchanged. A failing case's input is kept under {@code target/mutation-failures/} to replay.
 *
 * <p>Long campaign (13 targets x N cases): {@code ./mvnw -B test -Dtest=MutationCampaignTest -Dattnskip.mutations=800}
 * or, without Maven, {@code java -cp ... org.attnskip.hostile.MutationCampaign 800 [seed]}.
 */
public final class MutationCampaign {
    private static final Path SEEDS = Path.of("src/test/resources/seeds");
    private static final long CASE_TIMEOUT_SECONDS = 60;

    /** How input files are mutated. */
    enum Kind { BYTES, JSON, ONNX }

    /** One command line over one seed folder; each case mutates one of {@code files}. */
    record Target(String command, String name, String seed, Map<String, Kind> files,
                  BiFunction<Path, Path, List<String>> args) {
    }

    /** Counts for one command. */
    static final class Tally {
        int cases, exit0, exit2, crashes, partialOutputs, inputsModified, hangs;
        final TreeSet<String> reasons = new TreeSet<>();
        final List<String> failures = new ArrayList<>();

        boolean clean() {
            return crashes == 0 && partialOutputs == 0 && inputsModified == 0 && hangs == 0;
        }

        @Override
        public String toString() {
            return String.format("%5d cases: exit0 %5d  exit2 %5d  crashes %d  partial outputs %d  inputs modified %d  hangs %d  distinct reasons %d",
                    cases, exit0, exit2, crashes, partialOutputs, inputsModified, hangs, reasons.size());
        }
    }

    static List<Target> targets() {
        Map<String, Kind> onnx = Map.of("model.onnx", Kind.ONNX);
        Map<String, Kind> modelDir = Map.of("model.onnx", Kind.ONNX, "attnskip.json", Kind.JSON);
        List<Target> t = new ArrayList<>();
        t.add(new Target("inspect", "inspect", "onnx", onnx, (in, out) -> List.of("inspect", in.resolve("model.onnx").toString())));
        t.add(new Target("inspect", "inspect --json dir", "onnx", modelDir, (in, out) -> List.of("inspect", "--json", in.toString())));
        t.add(new Target("optimize", "optimize drop", "onnx", onnx, (in, out) -> optimize(in.resolve("model.onnx"), out, "--drop-attn-above", "0.5")));
        t.add(new Target("optimize", "optimize drop layers dir", "onnx", modelDir, (in, out) -> optimize(in, out, "--drop-attn-layers", "0,1")));
        t.add(new Target("optimize", "optimize freeze", "onnx", onnx, (in, out) -> optimize(in.resolve("model.onnx"), out, "--freeze-above", "0.5")));
        t.add(new Target("optimize", "optimize freeze all", "onnx", onnx, (in, out) -> optimize(in.resolve("model.onnx"), out, "--freeze-above", "0.5", "--freeze-logits", "all")));
        t.add(new Target("optimize", "optimize random", "onnx", onnx, (in, out) -> optimize(in.resolve("model.onnx"), out, "--random-kv-above", "0.5", "--seed", "3")));
        for (String v : List.of("v0", "v1", "v2")) {
            t.add(new Target("export --llama2c", "export --llama2c " + v, "llama2c", Map.of(v + ".bin", Kind.BYTES, "tok.bin", Kind.BYTES),
                    (in, out) -> List.of("export", "--llama2c", in.resolve(v + ".bin").toString(), "--tokenizer",
                            in.resolve("tok.bin").toString(), "-o", out.toString())));
        }
        t.add(new Target("export --hf", "export --hf", "hf",
                Map.of("config.json", Kind.JSON, "model.safetensors", Kind.BYTES, "tokenizer.json", Kind.JSON),
                (in, out) -> List.of("export", "--hf", in.toString(), "-o", out.toString())));
        t.add(new Target("export --hf", "export --hf sharded", "hf-sharded",
                Map.of("config.json", Kind.JSON, "model.safetensors.index.json", Kind.JSON,
                        "model-00001-of-00002.safetensors", Kind.BYTES, "model-00002-of-00002.safetensors", Kind.BYTES),
                (in, out) -> List.of("export", "--hf", in.toString(), "-o", out.toString())));
        t.add(new Target("export --hf", "export --hf fp16", "hf", Map.of("model.safetensors", Kind.BYTES),
                (in, out) -> List.of("export", "--hf", in.toString(), "--dtype", "fp16", "-o", out.toString())));
        return t;
    }

    private static List<String> optimize(Path in, Path out, String... mode) {
        List<String> a = new ArrayList<>(List.of("optimize", in.toString(), "-o",
                Files.isDirectory(in) ? out.toString() : out + ".onnx"));
        a.addAll(List.of(mode));
        return a;
    }

    private final Path work;
    private final long seed;
    private final Map<String, ModelProto> parsedSeeds = new LinkedHashMap<>();
    private final ByteArrayOutputStream captured = new ByteArrayOutputStream();
    private final ExecutorService runner = Executors.newSingleThreadExecutor(r -> {
        Thread t = new Thread(r, "mutation-case");
        t.setDaemon(true);
        return t;
    });

    MutationCampaign(Path work, long seed) {
        this.work = work;
        this.seed = seed;
    }

    /** Runs {@code casesPerTarget} cases of every target; returns the tallies by command. */
    Map<String, Tally> run(int casesPerTarget) throws IOException {
        Map<String, Tally> byCommand = new LinkedHashMap<>();
        PrintStream oldOut = System.out;
        PrintStream oldErr = System.err;
        PrintStream capture = new PrintStream(captured, true, StandardCharsets.UTF_8);
        try {
            List<Target> targets = targets();
            for (int ti = 0; ti < targets.size(); ti++) {
                Target target = targets.get(ti);
                Tally tally = byCommand.computeIfAbsent(target.command(), k -> new Tally());
                for (int c = 0; c < casesPerTarget; c++) {
                    System.setOut(capture);
                    System.setErr(capture);
                    runCase(target, new Random(seed * 1_000_003L + ti * 100_000L + c), ti + "-" + c, tally, oldErr);
                }
            }
        } finally {
            System.setOut(oldOut);
            System.setErr(oldErr);
            runner.shutdownNow();
        }
        return byCommand;
    }

    private void runCase(Target target, Random r, String id, Tally tally, PrintStream log) throws IOException {
        Path in = work.resolve("in");
        Path outDir = work.resolve("out");
        HostileFiles.deleteTree(in);
        HostileFiles.deleteTree(outDir);
        HostileFiles.copyTree(SEEDS.resolve(target.seed()), in);
        Files.createDirectories(outDir);
        List<String> names = new ArrayList<>(new TreeSet<>(target.files().keySet()));
        String file = names.get(r.nextInt(names.size()));
        Path mutated = in.resolve(file);
        byte[] original = Files.readAllBytes(mutated);
        byte[] bytes = switch (target.files().get(file)) {
            case BYTES -> Mutators.bytes(original, r);
            case JSON -> Mutators.json(original, r);
            case ONNX -> r.nextInt(3) == 0 ? Mutators.bytes(original, r)
                    : Mutators.onnx(parsedSeeds.computeIfAbsent(target.seed() + "/" + file, k -> parse(original)), r);
        };
        Files.write(mutated, bytes);
        TreeMap<String, String> inputBefore = HostileFiles.snapshot(in);
        Path out = outDir.resolve("result");
        List<String> args = target.args().apply(in, out);

        captured.reset();
        int code;
        String problem = null;
        Future<Integer> f = runner.submit(() -> Main.run(args.toArray(String[]::new)));
        try {
            code = f.get(CASE_TIMEOUT_SECONDS, TimeUnit.SECONDS);
        } catch (TimeoutException e) {
            f.cancel(true);
            tally.hangs++;
            code = -1;
            problem = "no answer within " + CASE_TIMEOUT_SECONDS + " s";
        } catch (Exception e) {
            code = -2;
            problem = "escaped Main.run: " + (e.getCause() != null ? e.getCause() : e);
        }
        String err = captured.toString(StandardCharsets.UTF_8);
        tally.cases++;
        if (code == 0) {
            tally.exit0++;
        } else if (code == 2) {
            tally.exit2++;
            List<String> lines = err.strip().lines().toList();
            if (lines.size() != 1 || !lines.get(0).startsWith("attnskip: ")) {
                problem = "exit 2 without exactly one 'attnskip:' line";
            } else {
                tally.reasons.add(lines.get(0).replaceAll("/\\S*", "PATH").replaceAll("-?\\d+", "N"));
            }
        } else if (problem == null) {
            problem = "exit " + code;
        }
        if (err.contains("\tat ") || err.contains("internal error")) {
            problem = problem == null ? "stack trace or internal error" : problem;
        }
        if (problem != null && code != -1) {
            tally.crashes++;
        }
        if (code != 0) {
            try (var left = Files.list(outDir)) {
                List<String> leftovers = left.map(p -> p.getFileName().toString()).toList();
                if (!leftovers.isEmpty()) {
                    tally.partialOutputs++;
                    problem = (problem == null ? "" : problem + "; ") + "left behind: " + leftovers;
                }
            }
        }
        if (!inputBefore.equals(HostileFiles.snapshot(in))) {
            tally.inputsModified++;
            problem = (problem == null ? "" : problem + "; ") + "input modified";
        }
        if (problem != null) {
            String line = target.name() + " case " + id + " (" + file + "): " + problem + " | "
                    + err.lines().limit(3).reduce("", (a, b) -> a + " / " + b);
            tally.failures.add(line);
            log.println("MUTATION FAILURE " + line);
            keepFailure(target, id, in);
        }
    }

    private void keepFailure(Target target, String id, Path in) throws IOException {
        Path keep = Path.of("target/mutation-failures", target.name().replace(' ', '_') + "-" + seed + "-" + id);
        HostileFiles.deleteTree(keep);
        HostileFiles.copyTree(in, keep);
    }

    private static ModelProto parse(byte[] b) {
        try {
            return ModelProto.parseFrom(b);
        } catch (IOException e) {
            throw new IllegalStateException("seed is not an ONNX model", e);
        }
    }

    static String summary(Map<String, Tally> byCommand) {
        StringBuilder b = new StringBuilder();
        byCommand.forEach((cmd, t) -> b.append(String.format("%-18s %s%n", cmd, t)));
        return b.toString();
    }

    public static void main(String[] args) throws IOException {
        int cases = args.length > 0 ? Integer.parseInt(args[0]) : 800;
        long seed = args.length > 1 ? Long.parseLong(args[1]) : 1;
        Path work = Files.createTempDirectory("attnskip-mutation");
        boolean clean;
        try {
            Map<String, Tally> result = new MutationCampaign(work, seed).run(cases);
            System.out.print(summary(result));
            result.values().forEach(t -> t.failures.forEach(System.out::println));
            clean = result.values().stream().allMatch(Tally::clean);
        } finally {
            HostileFiles.deleteTree(work);
        }
        System.exit(clean ? 0 : 1);
    }
}
