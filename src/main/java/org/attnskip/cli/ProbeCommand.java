package org.attnskip.cli;

import org.attnskip.export.ExportDtype;
import org.attnskip.export.ExportedWeights;
import org.attnskip.export.Llama2cCheckpoint;
import org.attnskip.export.LlamaOnnxExporter;
import org.attnskip.export.LlamaWeights;
import org.attnskip.export.ModelDirectory;
import org.attnskip.layout.LayoutDiscovery;
import org.attnskip.onnx.BadInputException;
import org.attnskip.onnx.Graph;
import org.attnskip.onnx.LoadedModel;
import org.attnskip.onnx.OnnxModelIO;
import org.attnskip.probe.Augmentations;
import org.attnskip.probe.AugmentedViews;
import org.attnskip.probe.HiddenStateRunner;
import org.attnskip.probe.RepresentationProbe;
import org.attnskip.probe.SingleLayerImportance;
import org.attnskip.probe.SwitchExperiment;
import org.attnskip.probe.Manipulation;
import org.attnskip.probe.ProbeCharts;
import org.attnskip.probe.ProbeReport;
import org.attnskip.probe.ProbeTables;
import org.attnskip.probe.QualityTolerance;
import org.attnskip.probe.Recommendation;
import org.attnskip.probe.SensitivityExperiment;
import org.attnskip.probe.SensitivityProbe;
import org.attnskip.probe.SensitivityRow;
import org.attnskip.reference.ReferenceLlama;
import org.attnskip.rewrite.ExposeResidualStreamPass;
import ai.onnxruntime.OrtSession.SessionOptions.OptLevel;
import org.attnskip.eval.Bootstrap;
import org.attnskip.eval.Progress;
import org.attnskip.eval.ReportWriter;
import org.attnskip.eval.TextDocuments;
import org.attnskip.runtime.Device;
import org.attnskip.runtime.OrtSessionFactory;
import org.attnskip.runtime.Tokenizer;
import org.attnskip.runtime.TokenizerFiles;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
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

    @Option(names = "--seed", defaultValue = "1234", description = "seed of the augmentations and the bootstrap (default ${DEFAULT-VALUE})")
    long seed;

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
        List<Manipulation> manipulations = run.contains("sensitivity") ? Manipulation.parseModes(modes, noise, noiseSeed) : List.of();
        manipulations = withCompensatedDrop(manipulations);
        List<String> texts = TextDocuments.read(text);
        texts = texts.subList(0, Math.min(prompts, texts.size()));
        if (texts.size() < 2) {
            throw new BadInputException(text + " holds fewer than 2 prompts");
        }
        Files.createDirectories(report);
        Path work = Files.createTempDirectory("attnskip-probe");
        List<String> notes = new ArrayList<>();
        LlamaWeights weights = null;
        Path onnx;
        Tokenizer tokenizer;
        if (model.toString().endsWith(".bin") && Files.isRegularFile(model)) {
            weights = Llama2cCheckpoint.read(model);
            onnx = work.resolve("model.onnx");
            OnnxModelIO.save(LlamaOnnxExporter.export(weights, ExportDtype.FLOAT), null, onnx, false);
            tokenizer = TokenizerFiles.open(tokenizerFile != null ? tokenizerFile : siblingTokenizer(model), null, weights.config.vocabSize());
        } else {
            onnx = OnnxModelIO.resolveModelFile(model);
            Path tok = tokenizerFile;
            if (tok == null && ModelDirectory.isModelDirectory(model)) {
                tok = ModelDirectory.read(model).tokenizerFile();
            }
            if (tok == null) {
                throw new BadInputException("probe needs the model's tokenizer: pass --tokenizer (llama2.c .bin or tokenizer.json)");
            }
            tokenizer = TokenizerFiles.open(tok, null, -1); // the file name tells the kind, as in eval
            if (run.contains("switch")) {
                weights = exportedWeights(notes);
            }
        }

        List<SingleLayerImportance.Layer> importance = null;
        List<RepresentationProbe.LayerMetrics> representations = null;
        if (run.contains("importance") || run.contains("representations")) {
            LoadedModel loaded = OnnxModelIO.load(onnx);
            Graph g = loaded.graph();
            ExposeResidualStreamPass.Exposed exposed = ExposeResidualStreamPass.apply(g, LayoutDiscovery.discover(g));
            notes.addAll(exposed.notes());
            Path exposedFile = work.resolve("exposed.onnx");
            OnnxModelIO.save(loaded, g.toModel(), exposedFile);
            List<HiddenStateRunner.Pass> passes = new ArrayList<>();
            boolean views = run.contains("representations");
            Map<Augmentations.Kind, RepresentationProbe.Views> copies = new LinkedHashMap<>();
            try (HiddenStateRunner runner = HiddenStateRunner.open(exposedFile, Device.CPU);
                 Progress progress = Progress.start("hidden states", texts.size(), quiet)) {
                for (int i = 0; i < texts.size(); i++) {
                    String t = texts.get(i);
                    passes.add(runner.run(tokens(tokenizer, t)));
                    for (Augmentations.Kind kind : views ? augmented.kinds() : List.<Augmentations.Kind>of()) {
                        var v = copies.computeIfAbsent(kind, k -> new RepresentationProbe.Views(new ArrayList<>(), new ArrayList<>()));
                        v.a().add(runner.run(tokens(tokenizer, augmented.copy(kind, i, 0, t))));
                        v.b().add(runner.run(tokens(tokenizer, augmented.copy(kind, i, 1, t))));
                    }
                    progress.step();
                }
            }
            if (run.contains("importance")) {
                importance = SingleLayerImportance.measure(passes);
            }
            if (views) {
                representations = RepresentationProbe.measure(passes, copies, alpha, seed);
            }
        }
        SwitchExperiment.Result switched = null;
        if (weights != null && run.contains("switch")) {
            if (Files.isRegularFile(pairs)) {
                if (!quiet) {
                    System.err.println("probe: switch experiment");
                }
                switched = new SwitchExperiment(new ReferenceLlama(weights), tokenizer).run(SwitchExperiment.readPairs(pairs));
            } else {
                notes.add("switch experiment skipped: no pairs file at " + pairs);
            }
        }
        SensitivityProbe.Result sensitivity = null;
        if (run.contains("sensitivity") || run.contains("importance")) {
            int layers = LayoutDiscovery.discover(OnnxModelIO.load(onnx).graph()).numLayers();
            var session = new OrtSessionFactory.Settings(Device.parse(device), 0, OptLevel.ALL_OPT);
            try (SensitivityExperiment experiment = new SensitivityExperiment(onnx, layers, tokenizer, texts, maxTokens,
                    new Bootstrap(Math.max(1, bootstrap), seed), session, work, DEFAULT_CONTEXT, Main.VERSION, quiet)) {
                if (compensation.enabled()) {
                    experiment.compensatedBy(compensation.forModel(maxPositions(weights), tokenizer, session.device(), work, quiet));
                }
                List<Double> attention = importance == null ? null : importance.stream().map(SingleLayerImportance.Layer::attention).toList();
                List<Double> prefers = switched == null ? null
                        : switched.layers().stream().map(SwitchExperiment.LayerResult::prefersInjected).toList();
                sensitivity = SensitivityProbe.run(experiment, manipulations, run.contains("importance"),
                        run.contains("sensitivity") ? tol : null, attention, prefers);
            }
            if (manipulations.stream().anyMatch(m -> m.kind() == Manipulation.Kind.RANDOM)) {
                notes.add("random variants are scored one prefix per pass: only a random graph's last position is defined");
            }
            if (manipulations.stream().anyMatch(m -> m.kind() == Manipulation.Kind.FREEZE)) {
                notes.add("freeze is measured with the exact all-positions form (FreezePass); optimize --auto writes the "
                        + "deployable form, whose last-position logits are the same");
            }
            if (manipulations.stream().anyMatch(m -> m.kind() == Manipulation.Kind.FREEZE_SINGLE_INPUT)) {
                notes.add("freeze-single-input is measured with the all-positions form of --freeze-kv single-input;"
                        + " its deployable form gives the same last-position logits");
            }
        }

        Map<String, Object> config = new LinkedHashMap<>();
        config.put("model", model.toString());
        config.put("text", text.toString());
        config.put("experiments", List.copyOf(run));
        config.put("prompts", texts.size());
        config.put("max_tokens", maxTokens);
        config.put("tolerance", tol.toString());
        config.put("modes", manipulations.stream().map(Manipulation::name).toList());
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
        ProbeReport result = new ProbeReport(config, representations, importance, switched, sensitivity, notes);
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

    static final int DEFAULT_CONTEXT = 1024;

    /** Adds drop-compensated when a calibration is given; refuses it without one. */
    private List<Manipulation> withCompensatedDrop(List<Manipulation> manipulations) {
        boolean asked = manipulations.stream().anyMatch(m -> m.kind() == Manipulation.Kind.DROP_COMPENSATED);
        if (!compensation.checkForProbe()) {
            if (asked) {
                throw new BadInputException("--modes drop-compensated needs --calibration-text FILE");
            }
            return manipulations;
        }
        if (asked || manipulations.isEmpty()) {
            return manipulations;
        }
        List<Manipulation> out = new ArrayList<>(manipulations);
        int drop = out.indexOf(Manipulation.drop());
        out.add(drop + 1, Manipulation.dropCompensated()); // next to plain drop, or first
        return out;
    }

    /** The positions calibration sequences are cut to: the checkpoint's or the exported directory's. */
    private int maxPositions(LlamaWeights weights) {
        if (weights != null) {
            return weights.config.seqLen();
        }
        return ModelDirectory.isModelDirectory(model) ? ModelDirectory.read(model).manifest().architecture().maxPositions()
                : Integer.MAX_VALUE;
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

    /** The switch runs on the reference implementation: it gets the weights back from a directory export wrote. */
    private LlamaWeights exportedWeights(List<String> notes) {
        if (!ModelDirectory.isModelDirectory(model)) {
            notes.add("switch experiment skipped: it runs the reference implementation, which needs a llama2.c "
                    + "checkpoint or a model directory written by attnskip export");
            return null;
        }
        try {
            ModelDirectory dir = ModelDirectory.read(model);
            LlamaWeights read = ExportedWeights.read(dir);
            if (ExportDtype.FLOAT16.cliName().equals(dir.manifest().dtype())) {
                notes.add("switch experiment: the reference implementation runs in fp32 on the directory's fp16 weights");
            }
            return read;
        } catch (ExportedWeights.NotExporterGraph e) {
            notes.add("switch experiment skipped: " + e.getMessage());
            return null;
        }
    }

    private int[] tokens(Tokenizer tokenizer, String text) {
        int[] ids = tokenizer.encode(text);
        return Arrays.copyOf(ids, Math.min(ids.length, maxTokens));
    }

    private static Path siblingTokenizer(Path checkpoint) {
        for (String name : List.of("tok512.bin", "tokenizer.bin")) {
            Path p = checkpoint.toAbsolutePath().getParent().resolve(name);
            if (Files.isRegularFile(p)) {
                return p;
            }
        }
        throw new BadInputException("no tokenizer next to " + checkpoint + ": pass --tokenizer");
    }

    private static void deleteQuietly(Path dir) {
        try (var files = Files.walk(dir)) {
            files.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        } catch (IOException e) {
            // a leftover temporary directory is harmless
        }
    }
}
