package org.attnskip.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import org.attnskip.export.ExportDtype;
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
import org.attnskip.probe.HiddenStateRunner;
import org.attnskip.probe.RepresentationProbe;
import org.attnskip.probe.SingleLayerImportance;
import org.attnskip.probe.SwitchExperiment;
import org.attnskip.reference.ReferenceLlama;
import org.attnskip.rewrite.ExposeResidualStreamPass;
import org.attnskip.runtime.Device;
import org.attnskip.runtime.Llama2cTokenizer;
import org.attnskip.runtime.Tokenizer;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;

/**
 * probe: per-layer representation metrics, single-layer importance and the switch experiment on
 * one model, written as report.json and report.md. Sensitivity sweeps need the evaluator and are
 * not run here.
 */
@Command(name = "probe",
        description = {"Measure, per layer, how the residual stream evolves (entropy, curvature, augmentation invariance),",
                "how much each layer turns it (attention and block influence), and the switch experiment."})
public final class ProbeCommand implements Callable<Integer> {
    @Parameters(index = "0", paramLabel = "MODEL", description = "a llama2.c checkpoint (.bin), an .onnx file or a model directory")
    Path model;

    @Option(names = "--text", required = true, description = "JSONL prompts, one {\"text\": ...} per line")
    Path text;

    @Option(names = "--report", required = true, description = "directory for report.json and report.md")
    Path report;

    @Option(names = "--tokenizer", description = "llama2.c tokenizer.bin (default: tok512.bin or tokenizer.bin next to a checkpoint, or the model directory's)")
    Path tokenizerFile;

    @Option(names = "--prompts", defaultValue = "32", description = "how many prompts to use (default ${DEFAULT-VALUE})")
    int prompts;

    @Option(names = "--max-tokens", defaultValue = "64", description = "tokens per prompt, BOS included (default ${DEFAULT-VALUE})")
    int maxTokens;

    @Option(names = "--alpha", defaultValue = "1.0", description = "Renyi order of the entropies (default ${DEFAULT-VALUE}, Shannon)")
    double alpha;

    @Option(names = "--augmentation", defaultValue = "WORD_DROPOUT",
            description = "WORD_DROPOUT, ADJACENT_SWAP or CHARACTER_NOISE (default ${DEFAULT-VALUE})")
    Augmentations.Kind augmentation;

    @Option(names = "--augmentation-rate", defaultValue = "0.1", description = "per word/pair/character (default ${DEFAULT-VALUE})")
    double augmentationRate;

    @Option(names = "--pairs", defaultValue = "eval/probe/country_pairs.jsonl", description = "country pairs for the switch experiment")
    Path pairs;

    @Option(names = "--seed", defaultValue = "1234")
    long seed;

    @Override
    public Integer call() throws Exception {
        if (prompts < 2 || maxTokens < 2) {
            throw new BadInputException("--prompts and --max-tokens must be at least 2");
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
            tokenizer = Llama2cTokenizer.load(tokenizerFile != null ? tokenizerFile : siblingTokenizer(model), weights.config.vocabSize());
        } else {
            onnx = model;
            Path tok = tokenizerFile;
            if (tok == null && ModelDirectory.isModelDirectory(model)) {
                tok = ModelDirectory.read(model).tokenizerFile();
            }
            if (tok == null || tok.toString().endsWith(".json")) {
                throw new BadInputException("probe needs a llama2.c tokenizer (.bin): pass --tokenizer");
            }
            tokenizer = Llama2cTokenizer.load(tok);
            notes.add("switch experiment skipped: it runs the reference implementation, which needs a llama2.c checkpoint");
        }

        LoadedModel loaded = OnnxModelIO.load(onnx);
        Graph g = loaded.graph();
        ExposeResidualStreamPass.Exposed exposed = ExposeResidualStreamPass.apply(g, LayoutDiscovery.discover(g));
        notes.addAll(exposed.notes());
        Path exposedFile = work.resolve("exposed.onnx");
        OnnxModelIO.save(loaded, g.toModel(), exposedFile);

        List<String> texts = readTexts(text, prompts);
        List<HiddenStateRunner.Pass> passes = new ArrayList<>();
        List<HiddenStateRunner.Pass> viewA = new ArrayList<>();
        List<HiddenStateRunner.Pass> viewB = new ArrayList<>();
        try (HiddenStateRunner runner = HiddenStateRunner.open(exposedFile, Device.CPU)) {
            for (int i = 0; i < texts.size(); i++) {
                String t = texts.get(i);
                passes.add(runner.run(tokens(tokenizer, t)));
                viewA.add(runner.run(tokens(tokenizer, Augmentations.apply(augmentation, t, augmentationRate, seed + 2L * i))));
                viewB.add(runner.run(tokens(tokenizer, Augmentations.apply(augmentation, t, augmentationRate, seed + 2L * i + 1))));
                System.err.printf("\rprobe: hidden states %d/%d", i + 1, texts.size());
            }
            System.err.println();
        }
        List<SingleLayerImportance.Layer> importance = SingleLayerImportance.measure(passes);
        System.err.println("probe: representation metrics");
        List<RepresentationProbe.LayerMetrics> representations = RepresentationProbe.measure(passes, viewA, viewB, alpha, seed);
        SwitchExperiment.Result switched = null;
        if (weights != null) {
            if (Files.isRegularFile(pairs)) {
                System.err.println("probe: switch experiment");
                switched = new SwitchExperiment(new ReferenceLlama(weights), tokenizer).run(SwitchExperiment.readPairs(pairs));
            } else {
                notes.add("switch experiment skipped: no pairs file at " + pairs);
            }
        }

        Map<String, Object> json = new LinkedHashMap<>();
        json.put("model", model.toString());
        json.put("prompts", texts.size());
        json.put("max_tokens", maxTokens);
        json.put("alpha", alpha);
        json.put("augmentation", Map.of("kind", augmentation.name(), "rate", augmentationRate, "seed", seed));
        json.put("representations", representations);
        json.put("importance", importance);
        json.put("switch", switched);
        json.put("notes", notes);
        new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValue(report.resolve("report.json").toFile(), json);
        Files.writeString(report.resolve("report.md"), markdown(representations, importance, switched, notes, texts.size()));
        System.out.println("probe: wrote " + report.resolve("report.json") + " and report.md");
        deleteQuietly(work);
        return 0;
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

    private static List<String> readTexts(Path jsonl, int limit) throws IOException {
        if (!Files.isRegularFile(jsonl)) {
            throw new BadInputException("no such prompts file: " + jsonl);
        }
        ObjectMapper mapper = new ObjectMapper();
        List<String> texts = new ArrayList<>();
        for (String line : Files.readAllLines(jsonl)) {
            if (line.isBlank()) {
                continue;
            }
            JsonNode n = mapper.readTree(line);
            if (!n.hasNonNull("text")) {
                throw new BadInputException(jsonl + ": every line needs a \"text\" field");
            }
            texts.add(n.get("text").asText());
            if (texts.size() == limit) {
                break;
            }
        }
        if (texts.size() < 2) {
            throw new BadInputException(jsonl + " holds fewer than 2 prompts");
        }
        return texts;
    }

    static String markdown(List<RepresentationProbe.LayerMetrics> reps, List<SingleLayerImportance.Layer> importance,
                           SwitchExperiment.Result switched, List<String> notes, int prompts) {
        StringBuilder md = new StringBuilder("# attnskip probe\n\n");
        md.append(prompts).append(" prompts. Layer l = the residual stream entering layer l; the last row is the last layer's output.\n\n");
        md.append("## Representation metrics\n\n| layer | prompt entropy | dataset entropy | curvature (rad) | InfoNCE | LiDAR | DiME |\n|---|---|---|---|---|---|---|\n");
        for (var r : reps) {
            md.append(String.format("| %d | %.4f | %.4f | %.4f | %.4f | %.3f | %.4f |%n", r.layer(), r.promptEntropy(),
                    r.datasetEntropy(), r.curvature(), r.infoNce(), r.lidar(), r.dime()));
        }
        md.append("\n## Single-layer importance (1 - cos, mean over tokens)\n\n| layer | attention | block |\n|---|---|---|\n");
        for (var l : importance) {
            md.append(String.format("| %d | %.5f | %.5f |%n", l.index(), l.attention(), l.block()));
        }
        if (switched != null) {
            md.append("\n## Switch (country state replaced at the layer's input)\n\n")
                    .append("| layer | answers original | answers injected | prefers injected | log P(original) | log P(injected) |\n|---|---|---|---|---|---|\n");
            List<SwitchExperiment.LayerResult> rows = new ArrayList<>();
            rows.add(switched.baseline());
            rows.addAll(switched.layers());
            for (var r : rows) {
                md.append(String.format("| %s | %.3f | %.3f | %.3f | %.3f | %.3f |%n", r.layer() < 0 ? "none" : String.valueOf(r.layer()),
                        r.followsOriginal(), r.followsInjected(), r.prefersInjected(), r.logProbOriginal(), r.logProbInjected()));
            }
        }
        if (!notes.isEmpty()) {
            md.append("\n## Notes\n\n");
            notes.forEach(n -> md.append("- ").append(n).append('\n'));
        }
        return md.toString();
    }

    private static void deleteQuietly(Path dir) {
        try (var files = Files.walk(dir)) {
            files.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        } catch (IOException e) {
            // a leftover temporary directory is harmless
        }
    }
}
