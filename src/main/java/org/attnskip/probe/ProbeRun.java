package org.attnskip.probe;

import ai.onnx.proto.OnnxMl.ModelProto;
import ai.onnxruntime.OrtSession.SessionOptions.OptLevel;
import org.attnskip.eval.Bootstrap;
import org.attnskip.eval.Progress;
import org.attnskip.export.ExportDtype;
import org.attnskip.export.ExportedWeights;
import org.attnskip.export.Llama2cCheckpoint;
import org.attnskip.export.LlamaOnnxExporter;
import org.attnskip.export.LlamaWeightSource;
import org.attnskip.eval.DropCompensation;
import org.attnskip.export.ModelDirectory;
import org.attnskip.layout.LayoutDiscovery;
import org.attnskip.onnx.BadInputException;
import org.attnskip.onnx.ExternalDataWriter;
import org.attnskip.onnx.Graph;
import org.attnskip.onnx.LoadedModel;
import org.attnskip.onnx.OnnxModelIO;
import org.attnskip.reference.ReferenceLlama;
import org.attnskip.rewrite.ExposeResidualStreamPass;
import org.attnskip.rewrite.FreezeKv;
import org.attnskip.rewrite.Mode;
import org.attnskip.rewrite.RewriteRequest;
import org.attnskip.runtime.Device;
import org.attnskip.runtime.OrtSessionFactory;
import org.attnskip.runtime.Tokenizer;
import org.attnskip.runtime.TokenizerFiles;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The probe's experiments on one model, in order: the model made runnable (a llama2.c checkpoint
 * exported to ONNX), the hidden states (single-layer importance, representation metrics), the
 * switch experiment on the reference implementation, the sensitivity curves and recommendations.
 * Writes only into its work directory; the caller writes the report.
 *
 * @param experiments   any of sensitivity, importance, switch, representations
 * @param manipulations the sensitivity curves to measure (empty without sensitivity)
 * @param tolerance     what a recommendation may give up
 * @param maxTokens     tokens per prompt, BOS included
 * @param seed          the bootstrap's and the augmentations' seed
 */
public record ProbeRun(Path model, Path tokenizerFile, List<String> texts, Set<String> experiments,
                       List<RewriteRequest> manipulations, QualityTolerance tolerance, int maxTokens, int bootstrap, long seed,
                       Device device, double alpha, AugmentedViews augmented, Path pairs, int contextLength, String toolVersion,
                       boolean quiet, Calibration calibration) {

    /** Fits calibrated drop's maps for the model the probe loads (its positions and tokenizer known only then). */
    @FunctionalInterface
    public interface Calibration {
        DropCompensation forModel(int maxPositions, Tokenizer tokenizer, Path scratch);
    }

    /** The measured parts of the report and its notes; {@code config} is the caller's. */
    public ProbeReport run(Path work, Map<String, Object> config) throws java.io.IOException {
        List<String> notes = new ArrayList<>();
        // the weights stay where they lie (memory-mapped) and are read a row block at a time
        LlamaWeightSource weights = null;
        try {
            Path onnx;
            Tokenizer tokenizer;
            if (model.toString().endsWith(".bin") && Files.isRegularFile(model)) {
                weights = Llama2cCheckpoint.open(model);
                onnx = exportCheckpoint(weights, work);
                tokenizer = TokenizerFiles.open(tokenizerFile != null ? tokenizerFile : siblingTokenizer(model), null,
                        weights.config().vocabSize());
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
                if (experiments.contains("switch")) {
                    weights = exportedWeights(notes);
                }
            }
            return run(work, config, notes, weights, onnx, tokenizer);
        } finally {
            if (weights != null) {
                weights.close();
            }
        }
    }

    private ProbeReport run(Path work, Map<String, Object> config, List<String> notes, LlamaWeightSource weights, Path onnx,
                            Tokenizer tokenizer) {
        List<SingleLayerImportance.Layer> importance = null;
        List<RepresentationProbe.LayerMetrics> representations = null;
        if (experiments.contains("importance") || experiments.contains("representations")) {
            List<HiddenStateRunner.Pass> passes = new ArrayList<>();
            boolean views = experiments.contains("representations");
            Map<Augmentations.Kind, RepresentationProbe.Views> copies = new LinkedHashMap<>();
            try (HiddenStateRunner runner = HiddenStateRunner.open(exposedGraph(onnx, work, notes), Device.CPU);
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
            if (experiments.contains("importance")) {
                importance = SingleLayerImportance.measure(passes);
            }
            if (views) {
                representations = RepresentationProbe.measure(passes, copies, alpha, seed);
            }
        }
        SwitchExperiment.Result switched = null;
        if (weights != null && experiments.contains("switch")) {
            if (Files.isRegularFile(pairs)) {
                switched = new SwitchExperiment(new ReferenceLlama(weights), tokenizer).run(SwitchExperiment.readPairs(pairs), quiet);
            } else {
                notes.add("switch experiment skipped: no pairs file at " + pairs);
            }
        }
        SensitivityProbe.Result sensitivity = null;
        if (experiments.contains("sensitivity") || experiments.contains("importance")) {
            sensitivity = sensitivity(onnx, tokenizer, work, importance, switched, maxPositions(weights));
            notes.addAll(sensitivityNotes());
        }
        return new ProbeReport(config, representations, importance, switched, sensitivity, notes);
    }

    private SensitivityProbe.Result sensitivity(Path onnx, Tokenizer tokenizer, Path work, List<SingleLayerImportance.Layer> importance,
                                                SwitchExperiment.Result switched, int maxPositions) {
        int layers = LayoutDiscovery.discover(OnnxModelIO.load(onnx).graph()).numLayers();
        var session = new OrtSessionFactory.Settings(device, 0, OptLevel.ALL_OPT);
        try (SensitivityExperiment experiment = new SensitivityExperiment(onnx, layers, tokenizer, texts, maxTokens,
                new Bootstrap(Math.max(1, bootstrap), seed), session, work, contextLength, toolVersion, quiet)) {
            if (calibration != null) {
                experiment.compensatedBy(calibration.forModel(maxPositions, tokenizer, work));
            }
            List<Double> attention = importance == null ? null : importance.stream().map(SingleLayerImportance.Layer::attention).toList();
            List<Double> prefers = switched == null ? null
                    : switched.layers().stream().map(SwitchExperiment.LayerResult::prefersInjected).toList();
            return SensitivityProbe.run(experiment, manipulations, experiments.contains("importance"),
                    experiments.contains("sensitivity") ? tolerance : null, attention, prefers);
        }
    }

    /** The positions calibration sequences are cut to: the checkpoint's or the exported directory's. */
    private int maxPositions(LlamaWeightSource weights) {
        if (weights != null) {
            return weights.config().seqLen();
        }
        return ModelDirectory.isModelDirectory(model) ? ModelDirectory.read(model).manifest().architecture().maxPositions()
                : Integer.MAX_VALUE;
    }

    private List<String> sensitivityNotes() {
        List<String> notes = new ArrayList<>();
        if (manipulations.stream().anyMatch(m -> m.mode() == Mode.RANDOM)) {
            notes.add("random variants are scored one prefix per pass: only a random graph's last position is defined");
        }
        if (manipulations.stream().anyMatch(m -> m.mode() == Mode.FREEZE && m.freezeKv() == FreezeKv.PAPER)) {
            notes.add("freeze is measured with the exact all-positions form (PaperFreezeEvaluationPass); optimize --auto writes the "
                    + "deployable form, whose last-position logits are the same");
        }
        if (manipulations.stream().anyMatch(m -> m.mode() == Mode.FREEZE && m.freezeKv() == FreezeKv.SINGLE_INPUT)) {
            notes.add("freeze-single-input is measured with the all-positions form of --freeze-kv single-input;"
                    + " its deployable form gives the same last-position logits");
        }
        return notes;
    }

    /** The model with its residual stream exposed as outputs, saved in the work directory. */
    private static Path exposedGraph(Path onnx, Path work, List<String> notes) {
        LoadedModel loaded = OnnxModelIO.load(onnx);
        Graph g = loaded.graph();
        ExposeResidualStreamPass.Exposed exposed = ExposeResidualStreamPass.apply(g, LayoutDiscovery.discover(g));
        notes.addAll(exposed.notes());
        Path exposedFile = work.resolve("exposed.onnx");
        OnnxModelIO.save(loaded, g.toModel(), exposedFile);
        return exposedFile;
    }

    /**
     * A llama2.c checkpoint as an ONNX graph in the work directory, its weights streamed to an
     * external data file a row block at a time.
     */
    private static Path exportCheckpoint(LlamaWeightSource weights, Path work) throws java.io.IOException {
        Path onnx = work.resolve("model.onnx");
        String data = "model.onnx.data";
        ModelProto proto;
        try (ExternalDataWriter external = new ExternalDataWriter(work.resolve(data), data, null)) {
            proto = LlamaOnnxExporter.export(weights, ExportDtype.FLOAT, external);
        }
        try (var out = Files.newOutputStream(onnx)) {
            proto.writeTo(out);
        }
        return onnx;
    }

    /** The switch runs on the reference implementation: it reads the weights of a directory export wrote where they lie. */
    private LlamaWeightSource exportedWeights(List<String> notes) {
        if (!ModelDirectory.isModelDirectory(model)) {
            notes.add("switch experiment skipped: it runs the reference implementation, which needs a llama2.c "
                    + "checkpoint or a model directory written by attnskip export");
            return null;
        }
        try {
            ModelDirectory dir = ModelDirectory.read(model);
            LlamaWeightSource read = ExportedWeights.open(dir);
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
}
