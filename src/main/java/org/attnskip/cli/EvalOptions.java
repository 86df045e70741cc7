package org.attnskip.cli;

import ai.onnxruntime.OrtSession.SessionOptions.OptLevel;
import org.attnskip.eval.ByteTokenizer;
import org.attnskip.eval.EvalSettings;
import org.attnskip.eval.LatencyBench;
import org.attnskip.eval.ModelSource;
import org.attnskip.eval.Task;
import org.attnskip.eval.TextDocuments;
import org.attnskip.onnx.BadInputException;
import org.attnskip.runtime.Device;
import org.attnskip.runtime.Tokenizer;
import org.attnskip.runtime.TokenizerFiles;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/** Options shared by eval, sweep and demo: data, device and session, quality and latency settings. */
final class EvalOptions {
    @Option(names = "--text", paramLabel = "FILE", description = "documents for perplexity and agreement: JSONL {\"text\": ...} or plain text")
    List<Path> text = new ArrayList<>();

    @Option(names = "--tasks", paramLabel = "PATH", description = "a task .jsonl file or a directory of them")
    List<Path> tasks = new ArrayList<>();

    @Option(names = "--tokenizer", paramLabel = "FILE", description = "tokenizer file (default: the model's, or one next to it)")
    Path tokenizer;

    @Option(names = "--report", paramLabel = "DIR", defaultValue = "out", description = "report directory (default: ${DEFAULT-VALUE})")
    Path report;

    @Option(names = "--device", defaultValue = "auto", paramLabel = "cpu|cuda|auto",
            description = "where to run; auto uses CUDA when it can load, else the CPU, and says so (default: ${DEFAULT-VALUE})")
    String device;

    @Option(names = "--threads", defaultValue = "0", description = "intra-op threads, 0 to choose by the machine's load and the model's size (as generate) (default: ${DEFAULT-VALUE})")
    int threads;

    @Option(names = "--graph-opt", defaultValue = "all", paramLabel = "none|basic|extended|all",
            description = "ONNX Runtime graph optimisation level (default: ${DEFAULT-VALUE})")
    String graphOpt;

    @Option(names = "--max-tokens", defaultValue = "256", description = "cut documents and items to this many tokens (default: ${DEFAULT-VALUE})")
    int maxTokens;

    @Option(names = "--max-docs", defaultValue = "0", description = "use only the first N documents, 0 for all (default: ${DEFAULT-VALUE})")
    int maxDocs;

    @Option(names = "--max-items", defaultValue = "0", description = "use only the first N items of each task, 0 for all (default: ${DEFAULT-VALUE})")
    int maxItems;

    @Option(names = "--bootstrap", defaultValue = "1000", description = "bootstrap resamples (default: ${DEFAULT-VALUE})")
    int bootstrap;

    @Option(names = "--seed", defaultValue = "0", description = "seed of the bootstrap and the latency inputs (default: ${DEFAULT-VALUE})")
    long seed;

    @Option(names = "--no-latency", description = "skip the latency bench")
    boolean noLatency;

    @Option(names = "--prefill-lengths", defaultValue = "64,128,256", paramLabel = "LIST",
            description = "prompt lengths of the prefill bench (default: ${DEFAULT-VALUE})")
    String prefillLengths;

    @Option(names = "--decode-contexts", defaultValue = "64,256", paramLabel = "LIST",
            description = "context lengths of the decode bench (default: ${DEFAULT-VALUE})")
    String decodeContexts;

    @Option(names = "--warmup", defaultValue = "2", description = "warm-up repetitions (default: ${DEFAULT-VALUE})")
    int warmup;

    @Option(names = "--repeats", defaultValue = "10", description = "measured repetitions (default: ${DEFAULT-VALUE})")
    int repeats;

    @Option(names = "--decode-steps", defaultValue = "4", description = "timed decode steps per repetition (default: ${DEFAULT-VALUE})")
    int decodeSteps;

    @Option(names = "--quiet", description = "no progress output")
    boolean quiet;

    @Option(names = "--json", description = "print the report (report.json's content) on stdout instead of the summary")
    boolean json;

    EvalSettings settings() {
        Device d = Device.parse(device);
        OptLevel level = optLevel(graphOpt.toLowerCase(Locale.ROOT));
        if (level == null) {
            throw new BadInputException("--graph-opt " + graphOpt + ": use none, basic, extended or all");
        }
        if (maxTokens < 2) {
            throw new BadInputException("--max-tokens must be at least 2");
        }
        LatencyBench.Config latency = noLatency ? null : new LatencyBench.Config(ints(prefillLengths, "--prefill-lengths"),
                ints(decodeContexts, "--decode-contexts"), Math.max(0, warmup), Math.max(1, repeats), Math.max(1, decodeSteps), seed);
        return new EvalSettings(d, threads, level, maxTokens, maxDocs, Math.max(1, bootstrap), seed, latency, quiet);
    }

    List<String> documents() {
        List<String> docs = new ArrayList<>();
        text.forEach(f -> docs.addAll(TextDocuments.read(f)));
        return docs;
    }

    List<Task> loadTasks() {
        List<Task> all = new ArrayList<>();
        for (Path p : tasks) {
            for (Task t : Task.load(p)) {
                all.add(maxItems > 0 && t.items().size() > maxItems ? new Task(t.name(), t.items().subList(0, maxItems)) : t);
            }
        }
        return all;
    }

    /** The model's tokenizer, or bytes when it has none (synthetic weights). */
    static Tokenizer tokenizer(ModelSource source, int vocab) {
        if (source.tokenizer() != null) {
            return TokenizerFiles.open(source.tokenizer(), null, vocab);
        }
        return new ByteTokenizer(Math.max(259, vocab));
    }

    Map<String, Object> config() {
        Map<String, Object> c = new LinkedHashMap<>();
        c.put("text", text.stream().map(Path::toString).toList());
        c.put("tasks", tasks.stream().map(Path::toString).toList());
        c.put("device", device);
        c.put("threads", threads);
        c.put("graph_opt", graphOpt);
        c.put("max_tokens", maxTokens);
        c.put("max_docs", maxDocs);
        c.put("max_items", maxItems);
        c.put("bootstrap_resamples", bootstrap);
        c.put("seed", seed);
        c.put("latency", !noLatency);
        c.put("prefill_lengths", prefillLengths);
        c.put("decode_contexts", decodeContexts);
        c.put("warmup", warmup);
        c.put("repeats", repeats);
        c.put("decode_steps", decodeSteps);
        return c;
    }

    /** ONNX Runtime's optimisation level named none, basic, extended or all; null for any other name. */
    static OptLevel optLevel(String name) {
        return switch (name) {
            case "none" -> OptLevel.NO_OPT;
            case "basic" -> OptLevel.BASIC_OPT;
            case "extended" -> OptLevel.EXTENDED_OPT;
            case "all" -> OptLevel.ALL_OPT;
            default -> null;
        };
    }

    private static List<Integer> ints(String list, String option) {
        List<Integer> out = new ArrayList<>();
        for (String p : list.split(",")) {
            if (p.isBlank()) {
                continue;
            }
            try {
                int v = Integer.parseInt(p.trim());
                if (v < 1) {
                    throw new NumberFormatException();
                }
                out.add(v);
            } catch (NumberFormatException e) {
                throw new BadInputException(option + " " + list + ": expected positive integers separated by commas");
            }
        }
        return out;
    }
}
