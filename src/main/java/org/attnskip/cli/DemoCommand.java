package org.attnskip.cli;

import org.attnskip.eval.Charts;
import org.attnskip.eval.EvalReport;
import org.attnskip.eval.Evaluation;
import org.attnskip.eval.ModelSource;
import org.attnskip.eval.ReportTables;
import org.attnskip.eval.ReportWriter;
import org.attnskip.eval.ShippedEvalData;
import org.attnskip.export.ExportDtype;
import org.attnskip.export.LlamaOnnxExporter;
import org.attnskip.export.SyntheticWeights;
import org.attnskip.layout.DecoderLayout;
import org.attnskip.layout.LayoutDiscovery;
import org.attnskip.onnx.Graph;
import org.attnskip.onnx.LoadedModel;
import org.attnskip.onnx.OnnxModelIO;
import org.attnskip.rewrite.ChangeReport;
import org.attnskip.rewrite.DropAttentionPass;
import org.attnskip.rewrite.LayerSelection;
import org.attnskip.rewrite.RewriteMetadata;
import org.attnskip.runtime.Tokenizer;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;

@Command(name = "demo",
        description = {"The whole pipeline, offline: build the embedded default model (synthetic weights at a fixed seed,",
                "12 layers, 1024+ positions), rewrite it with --drop-attn-above 0.6, evaluate both and write the report.",
                "Uses eval/stories.txt and eval/tasks/ of the project folder when run there, else the copy packed into the jar.",
                "--model uses a model of yours."})
public final class DemoCommand implements Callable<Integer> {
    /** Large enough that skipped attention shows on 2 CPU cores, small enough for a few minutes in all. */
    static final String DEFAULT_SPEC = "layers=12,hidden=256,heads=4,ffn=768,vocab=512,seq=1280";
    static final long DEFAULT_SEED = 20240501L;

    @Option(names = "--model", paramLabel = "MODEL", description = "use this model (.onnx, directory, llama2.c .bin) instead")
    Path model;

    @Option(names = "--drop-attn-above", defaultValue = "0.6", paramLabel = "F", description = "(default: ${DEFAULT-VALUE})")
    String dropAbove;

    @Mixin
    EvalOptions options;

    /** Which copy of the shipped data was used, for the report (null when the user gave it all). */
    private String dataOrigin;

    @Override
    public Integer call() {
        applyDemoDefaults();
        var settings = options.settings();
        try (ScratchDir scratch = new ScratchDir("attnskip-demo")) {
            useShippedData(scratch.path());
            Files.createDirectories(options.report);
            ModelSource source;
            if (model == null) {
                Path base = options.report.resolve("demo-baseline.onnx");
                System.out.println("1/3 building the default model: synthetic " + DEFAULT_SPEC + ", seed " + DEFAULT_SEED);
                OnnxModelIO.save(LlamaOnnxExporter.export(SyntheticWeights.generate(DEFAULT_SPEC, DEFAULT_SEED), ExportDtype.FLOAT),
                        null, base, false);
                source = new ModelSource(base, null, "synthetic " + DEFAULT_SPEC + " seed " + DEFAULT_SEED);
            } else {
                System.out.println("1/3 using " + model);
                source = ModelSource.resolve(model, options.tokenizer, scratch.path());
            }
            settings = settings.fittedTo(source.maxPositions(), note -> System.err.println("attnskip: " + note));
            Path fast = options.report.resolve("demo-fast.onnx");
            ChangeReport change = optimise(source.onnx(), fast);
            System.out.printf("2/3 optimised with --drop-attn-above %s: attention dropped in layers %s -> %s%n", dropAbove,
                    change.layers(), fast);
            Tokenizer tokenizer = EvalOptions.tokenizer(source, EvalCommand.vocabOf(source));
            Map<String, Object> config = options.config();
            config.put("baseline", source.described());
            config.put("variant", "drop-attn-above " + dropAbove);
            if (dataOrigin != null) {
                config.put("shipped_data", dataOrigin);
            }
            System.out.println("3/3 evaluating both (quality, then interleaved latency)");
            EvalReport report = new Evaluation(settings).compare(source.onnx(), fast, tokenizer, options.documents(),
                    options.loadTasks(), config, Main.VERSION);
            ReportWriter.write(options.report, report, "attnskip demo", ReportTables.forEval(report), Charts.forEval(report));
            EvalCommand.printSummary(report);
            System.out.println("report: " + options.report.resolve("report.html"));
        } catch (java.io.IOException e) {
            throw new org.attnskip.onnx.BadInputException("cannot create " + options.report + ": " + e.getMessage());
        }
        return 0;
    }

    private ChangeReport optimise(Path base, Path out) {
        LoadedModel loaded = OnnxModelIO.load(base);
        Graph graph = loaded.graph();
        DecoderLayout layout = LayoutDiscovery.discover(graph);
        ChangeReport change = DropAttentionPass.apply(graph, layout, LayerSelection.fromFraction(dropAbove, layout.numLayers()), 1024);
        OnnxModelIO.save(loaded, RewriteMetadata.stamp(graph.toModel(), change, Main.VERSION), out);
        return change;
    }

    /** The shipped stories and tasks where the user gave none: from the project folder, else from the jar. */
    private void useShippedData(Path scratch) {
        if (!options.text.isEmpty() && !options.tasks.isEmpty()) {
            return;
        }
        ShippedEvalData.Located data = ShippedEvalData.find(Path.of(""), scratch);
        if (data == null) {
            // without data the report would silently lack those sections
            List<String> missing = new ArrayList<>();
            if (options.text.isEmpty()) {
                missing.add("text quality");
            }
            if (options.tasks.isEmpty()) {
                missing.add("task accuracy");
            }
            System.err.println("attnskip: no eval/stories.txt or eval/tasks here nor in the jar: the report will have no "
                    + String.join(" and no ", missing) + " (give --text and --tasks)");
            return;
        }
        List<String> parts = new ArrayList<>();
        if (options.text.isEmpty()) {
            options.text = List.of(data.stories());
            parts.add("stories");
        }
        if (options.tasks.isEmpty()) {
            options.tasks = List.of(data.tasks());
            parts.add("tasks");
        }
        dataOrigin = String.join(" and ", parts) + ": " + data.origin();
        System.out.println("data: " + dataOrigin);
    }

    /** The demo's own defaults where the user gave none: long contexts, few items. */
    private void applyDemoDefaults() {
        if (options.maxItems == 0) {
            options.maxItems = 20;
        }
        if (options.maxDocs == 0) {
            options.maxDocs = 20;
        }
        if (options.prefillLengths.equals("64,128,256")) {
            options.prefillLengths = "128,512";
        }
        if (options.decodeContexts.equals("64,256")) {
            options.decodeContexts = "256,1024";
        }
    }
}
