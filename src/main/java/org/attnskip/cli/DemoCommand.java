package org.attnskip.cli;

import org.attnskip.eval.DemoReport;
import org.attnskip.eval.DemoReportParts;
import org.attnskip.eval.DemoSummary;
import org.attnskip.eval.EvalSettings;
import org.attnskip.eval.ModelSource;
import org.attnskip.eval.ReportWriter;
import org.attnskip.eval.ShippedDemoModel;
import org.attnskip.eval.ShippedEvalData;
import org.attnskip.eval.SweepReport;
import org.attnskip.eval.ThresholdSweep;
import org.attnskip.export.ExportDtype;
import org.attnskip.export.LlamaOnnxExporter;
import org.attnskip.export.LlamaWeights;
import org.attnskip.export.SyntheticWeights;
import org.attnskip.onnx.BadInputException;
import org.attnskip.onnx.OnnxModelIO;
import org.attnskip.rewrite.Mode;
import org.attnskip.runtime.Tokenizer;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import java.util.concurrent.Callable;

@Command(name = "demo",
        description = {"The whole story in about two minutes, offline: export the trained model packed into the jar",
                "(stories-deep12, 12 layers), rewrite it with --drop-attn-above 0.6 and --freeze-above 0.6 and at a few",
                "more thresholds, score every variant against the baseline on the shipped stories and tasks, time the",
                "same rewrites on a 12-layer synthetic model where attention is a real share of the work, and write",
                "the report. Uses eval/stories.txt and eval/tasks/ of the project folder when run there, else the copy",
                "packed into the jar. --model measures a model of yours instead (quality and latency)."})
public final class DemoCommand implements Callable<Integer> {
    /** Large enough that skipped attention shows on 2 CPU cores, small enough for a few minutes in all. */
    static final String LATENCY_SPEC = "layers=12,hidden=256,heads=4,ffn=768,vocab=512,seq=1280";
    static final long LATENCY_SEED = 20240501L;
    static final String LATENCY_MODEL = "the 12-layer synthetic model (random weights, hidden 256)";

    @Option(names = "--model", paramLabel = "MODEL", description = "measure this model (.onnx, directory, llama2.c .bin) instead")
    Path model;

    @Option(names = "--drop-attn-above", defaultValue = "0.6", paramLabel = "F", description = "the drop threshold of the summary (default: ${DEFAULT-VALUE})")
    String dropAbove;

    @Option(names = "--freeze-above", defaultValue = "0.6", paramLabel = "F", description = "the freeze threshold of the summary (default: ${DEFAULT-VALUE})")
    String freezeAbove;

    @Option(names = "--thresholds", defaultValue = "0,0.5,0.75,0.9", paramLabel = "LIST",
            description = "the quality curve's further thresholds, for both drop and freeze (default: ${DEFAULT-VALUE})")
    String thresholds;

    @Mixin
    EvalOptions options;

    /** Which copy of the shipped data was used, for the report (null when the user gave it all). */
    private String dataOrigin;

    @Override
    public Integer call() {
        applyDemoDefaults();
        String drop = single(dropAbove, "--drop-attn-above");
        String freeze = single(freezeAbove, "--freeze-above");
        List<String> curve = curve(ThresholdSweep.parseThresholds(thresholds), drop, freeze);
        EvalSettings settings = options.settings();
        try (ScratchDir scratch = new ScratchDir("attnskip-demo")) {
            useShippedData(scratch.path());
            Files.createDirectories(options.report);
            ModelSource quality;
            if (model == null) {
                step("1/4 exporting the trained model packed into the jar (" + ShippedDemoModel.CHECKPOINT + ") to ONNX");
                quality = ModelSource.resolve(ShippedDemoModel.extractTo(scratch.path().resolve("model")), options.tokenizer,
                        scratch.path());
            } else {
                step("1/4 using " + model);
                quality = ModelSource.resolve(model, options.tokenizer, scratch.path());
            }
            String qualityName = model == null ? ShippedDemoModel.DESCRIPTION : quality.described();
            EvalSettings scoring = new EvalSettings(settings.device(), settings.threads(), settings.optimization(),
                    settings.maxTokens(), settings.maxDocuments(), settings.bootstrapResamples(), settings.seed(), null,
                    settings.quiet()).fittedTo(quality.maxPositions(), note -> System.err.println("attnskip: " + note));
            Tokenizer tokenizer = EvalOptions.tokenizer(quality, EvalCommand.vocabOf(quality));
            List<String> documents = options.documents();
            var tasks = options.loadTasks();
            step("2/4 drop at thresholds " + curve + ": rewrite, then score against the baseline");
            SweepReport qualityDrop = sweep(scoring, Mode.DROP).run(quality.onnx(), curve, tokenizer, documents,
                    tasks, scratch.path(), config(quality, "drop", curve), Main.VERSION);
            step("3/4 freeze at thresholds " + curve + ": rewrite, then score against the baseline");
            SweepReport qualityFreeze = sweep(scoring, Mode.FREEZE).run(quality.onnx(), curve, tokenizer, documents,
                    tasks, scratch.path(), config(quality, "freeze", curve), Main.VERSION);
            SweepReport latencyDrop = null;
            SweepReport latencyFreeze = null;
            String latencyName = model == null ? LATENCY_MODEL : quality.described();
            if (settings.latency() != null) {
                ModelSource timed = quality;
                if (model == null) {
                    step("4/4 latency on " + LATENCY_MODEL + ": baseline and variant interleaved");
                    Path base = scratch.path().resolve("latency-model.onnx");
                    LlamaWeights weights = SyntheticWeights.generate(LATENCY_SPEC, LATENCY_SEED);
                    OnnxModelIO.save(LlamaOnnxExporter.export(weights, ExportDtype.FLOAT), null, base, false);
                    timed = new ModelSource(base, null, "synthetic " + LATENCY_SPEC + " seed " + LATENCY_SEED, weights.config.seqLen());
                } else {
                    step("4/4 latency on " + model + ": baseline and variant interleaved");
                }
                EvalSettings timing = settings.fittedTo(timed.maxPositions(), note -> System.err.println("attnskip: " + note));
                // 1.0 leaves the graph as it is: its ratio is the noise floor of the others
                List<String> dropPoints = Double.parseDouble(drop) == 1 ? List.of(drop) : List.of(drop, "1.0");
                latencyDrop = sweep(timing, Mode.DROP).run(timed.onnx(), dropPoints, null, List.of(), List.of(),
                        scratch.path(), config(timed, "drop", dropPoints), Main.VERSION);
                latencyFreeze = sweep(timing, Mode.FREEZE).run(timed.onnx(), List.of(freeze), null, List.of(),
                        List.of(), scratch.path(), config(timed, "freeze", List.of(freeze)), Main.VERSION);
            } else {
                step("4/4 latency skipped (--no-latency)");
            }
            DemoReport report = new DemoReport(List.of(), qualityName, latencyName, Double.parseDouble(drop),
                    Double.parseDouble(freeze), qualityDrop, qualityFreeze, latencyDrop, latencyFreeze);
            report = report.withSummary(DemoSummary.lines(report, options.report.resolve("report.html").toString()));
            ReportWriter.write(options.report, report, "attnskip demo", report.summary(), DemoReportParts.tables(report),
                    DemoReportParts.charts(report));
            if (options.json) {
                System.out.println(ReportWriter.json(report));
            } else {
                report.summary().forEach(System.out::println);
            }
        } catch (java.io.IOException e) {
            throw new BadInputException("cannot create " + options.report + ": " + e.getMessage());
        }
        return 0;
    }

    /** A sweep of drop or freeze (no noise; the perplexity tolerance only marks sweep's recommendation, unused here). */
    private static ThresholdSweep sweep(EvalSettings settings, Mode mode) {
        return new ThresholdSweep(settings, mode, "gaussian", 0, 0.05);
    }

    private static String single(String value, String option) {
        List<String> list = ThresholdSweep.parseThresholds(value);
        if (list.size() != 1) {
            throw new BadInputException(option + " takes one threshold, not " + value);
        }
        return list.get(0);
    }

    /** The curve's thresholds with the headline ones, in order. */
    private static List<String> curve(List<String> thresholds, String drop, String freeze) {
        TreeSet<String> all = new TreeSet<>((a, b) -> Double.compare(Double.parseDouble(a), Double.parseDouble(b)));
        all.addAll(thresholds);
        all.add(drop);
        all.add(freeze);
        return new ArrayList<>(all);
    }

    private Map<String, Object> config(ModelSource source, String mode, List<String> list) {
        Map<String, Object> config = options.config();
        config.put("model", source.described());
        config.put("mode", mode);
        config.put("thresholds", list);
        if (dataOrigin != null) {
            config.put("shipped_data", dataOrigin);
        }
        return config;
    }

    /** One line per step: on stdout, or on stderr when stdout carries the JSON report. */
    private void step(String line) {
        if (!options.quiet) {
            PrintStream out = options.json ? System.err : System.out;
            out.println(line);
        }
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
        step("data: " + dataOrigin);
    }

    /** The demo's own defaults where the user gave none: few items, one long prefill and one long decode context. */
    private void applyDemoDefaults() {
        if (options.maxItems == 0) {
            options.maxItems = 8;
        }
        if (options.maxDocs == 0) {
            options.maxDocs = 16;
        }
        if (options.prefillLengths.equals("64,128,256")) {
            options.prefillLengths = "512";
        }
        if (options.decodeContexts.equals("64,256")) {
            options.decodeContexts = "1024";
        }
        if (options.repeats == 10) {
            options.repeats = 5;
        }
        if (options.warmup == 2) {
            options.warmup = 1;
        }
    }
}
