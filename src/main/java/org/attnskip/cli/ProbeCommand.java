package org.attnskip.cli;

import org.attnskip.onnx.BadInputException;
import org.attnskip.probe.Augmentations;
import org.attnskip.probe.AugmentedViews;
import org.attnskip.probe.ProbeModes;
import org.attnskip.probe.ProbeRun;
import org.attnskip.probe.ProbeCharts;
import org.attnskip.probe.ProbeReport;
import org.attnskip.probe.ProbeTables;
import org.attnskip.probe.QualityTolerance;
import org.attnskip.probe.Recommendation;
import org.attnskip.probe.SensitivityProbe;
import org.attnskip.probe.SensitivityRow;
import org.attnskip.rewrite.RewriteRequest;
import org.attnskip.eval.ReportWriter;
import org.attnskip.eval.TextDocuments;
import org.attnskip.runtime.Device;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Callable;

/**
 * probe: the layer experiments on one model. Sensitivity (drop, freeze and random at every k,
 * measured with the evaluator), single-layer importance (1 - cos and the effect of dropping only
 * that layer), the switch experiment and the representation metrics; with a tolerance, the
 * recommended k per manipulation. Writes report.json, report.md, report.html and PNG charts.
 */
@Command(name = "probe",
        description = {"Measure, per layer, how much each manipulation above k costs (sensitivity), how much each layer",
                "matters on its own (importance), where the switch experiment stops working (switch) and how the",
                "residual stream evolves (representations); recommend, per manipulation, the smallest k within",
                "--tolerance. Writes report.json, report.md, report.html and PNG charts."})
public final class ProbeCommand implements Callable<Integer> {
    static final List<String> EXPERIMENTS = List.of("sensitivity", "importance", "switch", "representations");

    @Parameters(index = "0", paramLabel = "MODEL", description = "a llama2.c checkpoint (.bin), an .onnx file or a model directory")
    Path model;

    @Option(names = "--text", defaultValue = "eval/stories.txt",
            description = "prompts: JSONL {\"text\": ...} per line, or plain text paragraphs (default: ${DEFAULT-VALUE})")
    Path text;

    @Option(names = "--report", required = true, description = "directory for report.json, report.md, report.html and the charts")
    Path report;

    @Option(names = "--experiments", defaultValue = "sensitivity,importance,switch,representations", paramLabel = "LIST",
            description = "any of sensitivity, importance, switch, representations (default: ${DEFAULT-VALUE})")
    String experiments;

    @Option(names = "--tolerance", defaultValue = "top1=0.9", paramLabel = "BOUNDS",
            description = {"quality the recommendation may give up, all must hold: top1=A (top-1 agreement >= A),",
                    "kl=K (mean KL <= K nats), ppl=+P%% (perplexity at most P%% above the baseline) (default: ${DEFAULT-VALUE})"})
    String tolerance;

    @Option(names = "--modes", defaultValue = "drop,freeze,random", paramLabel = "LIST",
            description = {"sensitivity: manipulations to sweep over k: drop, freeze (the paper's flavour),",
                    "freeze-single-input (--freeze-kv single-input) and random (default: ${DEFAULT-VALUE})"})
    String modes;

    @Option(names = "--noise", defaultValue = "gaussian,angle:30,shuffle", paramLabel = "LIST",
            description = "sensitivity: the random kinds, each seeded (default: ${DEFAULT-VALUE})")
    String noise;

    @Option(names = "--noise-seed", defaultValue = "0", description = "sensitivity: the random noise seed (default: ${DEFAULT-VALUE})")
    long noiseSeed;

    @Option(names = "--bootstrap", defaultValue = "1000", description = "sensitivity: bootstrap resamples (default: ${DEFAULT-VALUE})")
    int bootstrap;

    @Option(names = "--device", defaultValue = "auto", paramLabel = "cpu|cuda|auto", description = "sensitivity: where to run (default: ${DEFAULT-VALUE})")
    String device;

    @Option(names = "--json", description = "print the report (report.json's content) on stdout instead of the recommendations")
    boolean json;

    @Option(names = "--tokenizer", description = "llama2.c tokenizer.bin or Hugging Face tokenizer.json (default: tok512.bin or tokenizer.bin next to a checkpoint, or the model directory's)")
    Path tokenizerFile;

    @Option(names = "--prompts", defaultValue = "32", description = "how many prompts to use (default ${DEFAULT-VALUE})")
    int prompts;

    @Option(names = "--max-tokens", defaultValue = "64", description = "tokens per prompt, BOS included (default ${DEFAULT-VALUE})")
    int maxTokens;

    @Option(names = "--alpha", defaultValue = "1.0", description = "Renyi order of the entropies (default ${DEFAULT-VALUE}, Shannon)")
    double alpha;

    @Option(names = "--augmentation", defaultValue = "WORD_DROPOUT,ADJACENT_SWAP,CHARACTER_NOISE", split = ",", paramLabel = "LIST",
            description = "augmentations, each measured and reported on its own: any of WORD_DROPOUT, ADJACENT_SWAP, CHARACTER_NOISE (default ${DEFAULT-VALUE})")
    List<Augmentations.Kind> augmentations;

    @Option(names = "--augmentation-rate", defaultValue = "0.1", description = "per word/pair/character (default ${DEFAULT-VALUE})")
    double augmentationRate;

    @Option(names = "--pairs", defaultValue = "eval/probe/country_pairs.jsonl", description = "country pairs for the switch experiment")
    Path pairs;

    // no defaultValue: picocli would apply it after the hidden --seed had set the field
    @Option(names = "--bootstrap-seed", description = "seed of the bootstrap resamples and the augmentations (default ${DEFAULT-VALUE})")
    long seed = 1234;

    /** The old spelling of --bootstrap-seed, kept working but no longer shown (optimize's seed is the noise's). */
    @Option(names = "--seed", hidden = true)
    void oldBootstrapSeed(long value) {
        seed = value;
    }

    @Option(names = "--quiet", description = "no progress output")
    boolean quiet;

    /** --calibration-text adds drop-compensated (calibrated drop) to the sensitivity modes. */
    @picocli.CommandLine.Mixin
    CompensationOptions compensation;

    @Override
    public Integer call() throws Exception {
        if (prompts < 2 || maxTokens < 2) {
            throw new BadInputException("--prompts and --max-tokens must be at least 2");
        }
        Set<String> run = parseExperiments(experiments);
        QualityTolerance tol = QualityTolerance.parse(tolerance);
        AugmentedViews augmented;
        try {
            augmented = new AugmentedViews(augmentations, augmentationRate, seed);
        } catch (IllegalArgumentException e) {
            throw new BadInputException("--augmentation: " + e.getMessage());
        }
        List<RewriteRequest> manipulations = run.contains("sensitivity")
                ? withCompensatedDrop(ProbeModes.parse(modes, noise, noiseSeed, DEFAULT_CONTEXT)) : List.of();
        List<String> texts = TextDocuments.read(text);
        texts = texts.subList(0, Math.min(prompts, texts.size()));
        if (texts.size() < 2) {
            throw new BadInputException(text + " holds fewer than 2 prompts");
        }
        Files.createDirectories(report);
        Path work = Files.createTempDirectory("attnskip-probe");
        Map<String, Object> config = new LinkedHashMap<>();
        config.put("model", model.toString());
        config.put("text", text.toString());
        config.put("experiments", List.copyOf(run));
        config.put("prompts", texts.size());
        config.put("max_tokens", maxTokens);
        config.put("tolerance", tol.toString());
        config.put("modes", manipulations.stream().map(RewriteRequest::label).toList());
        if (compensation.enabled()) {
            config.putAll(compensation.config());
        }
        config.put("noise_seed", noiseSeed);
        config.put("bootstrap_resamples", bootstrap);
        config.put("seed", seed);
        config.put("alpha", alpha);
        config.put("augmentation", Map.of("kinds", augmentations.stream().map(AugmentedViews::key).toList(), "rate", augmentationRate, "seed", seed));
        config.put("attention_flops_context", DEFAULT_CONTEXT);
        config.put("version", Main.VERSION);
        ProbeReport result = new ProbeRun(model, tokenizerFile, texts, run, manipulations, tol, maxTokens, bootstrap, seed, Device.parse(device),
                alpha, augmented, pairs, DEFAULT_CONTEXT, Main.VERSION, quiet, calibration()).run(work, config);
        SensitivityProbe.Result sensitivity = result.sensitivity();
        ReportWriter.write(report, result, "attnskip probe: " + model.getFileName(), ProbeTables.of(result), ProbeCharts.of(result));
        if (json) {
            System.out.println(ReportWriter.json(result));
        } else if (sensitivity != null) {
            for (Recommendation r : sensitivity.recommendations()) {
                System.out.printf("recommended %-22s k = %d (layers %s)%s%n", r.mode(), r.k(), r.layers(),
                        r.evidence() == null ? "" : String.format(java.util.Locale.ROOT, ": top-1 %.4f, KL %.4f, ppl x%.4f",
                                r.evidence().top1(), r.evidence().kl(), r.evidence().perplexityRatio()));
            }
            if (sensitivity.nonContiguous() != null && sensitivity.nonContiguous().evidence() != null) {
                SensitivityRow e = sensitivity.nonContiguous().evidence();
                System.out.printf("recommended drop (non-contiguous) layers %s: top-1 %.4f, KL %.4f, ppl x%.4f%n",
                        sensitivity.nonContiguous().layers(), e.top1(), e.kl(), e.perplexityRatio());
            }
            Recommendation best = sensitivity.overall();
            System.out.println("recommended overall: " + (best == null ? "change nothing (no mode keeps the tolerance)"
                    : best.mode() + " of layers " + best.layers() + " (" + ProbeTables.saving(best.evidence()) + ")"));
        }
        if (!json) {
            System.out.println("probe: wrote " + report.resolve("report.html") + ", report.json and report.md");
        }
        deleteQuietly(work);
        return 0;
    }

    static final int DEFAULT_CONTEXT = RewriteRequest.DEFAULT_CONTEXT;

    /** Adds drop-compensated when a calibration is given; refuses it without one. */
    private List<RewriteRequest> withCompensatedDrop(List<RewriteRequest> manipulations) {
        boolean asked = manipulations.stream().anyMatch(RewriteRequest::compensated);
        if (!compensation.checkForProbe()) {
            if (asked) {
                throw new BadInputException("--modes drop-compensated needs --calibration-text FILE");
            }
            return manipulations;
        }
        if (asked) {
            return manipulations;
        }
        List<RewriteRequest> out = new java.util.ArrayList<>(manipulations);
        int drop = out.indexOf(RewriteRequest.drop(DEFAULT_CONTEXT));
        out.add(drop + 1, RewriteRequest.compensatedDropToFit(DEFAULT_CONTEXT)); // next to plain drop, or first
        return out;
    }

    /** How the probe fits calibrated drop's maps once it knows the model; null without --calibration-text. */
    private ProbeRun.Calibration calibration() {
        if (!compensation.enabled()) {
            return null;
        }
        Device d = Device.parse(device);
        return (maxPositions, tokenizer, scratch) -> compensation.forModel(maxPositions, tokenizer, d, scratch, quiet);
    }

    static Set<String> parseExperiments(String list) {
        Set<String> out = new LinkedHashSet<>();
        for (String e : list.split(",")) {
            String name = e.trim().toLowerCase(java.util.Locale.ROOT);
            if (name.isEmpty()) {
                continue;
            }
            if (!EXPERIMENTS.contains(name)) {
                throw new BadInputException("--experiments " + list + ": unknown '" + name + "' (use " + String.join(", ", EXPERIMENTS) + ")");
            }
            out.add(name);
        }
        if (out.isEmpty()) {
            throw new BadInputException("--experiments names no experiment");
        }
        return out;
    }

    private static void deleteQuietly(Path dir) {
        try (var files = Files.walk(dir)) {
            files.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        } catch (IOException e) {
            // a leftover temporary directory is harmless
        }
    }
}
