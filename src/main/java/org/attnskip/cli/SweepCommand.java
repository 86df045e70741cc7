package org.attnskip.cli;

import org.attnskip.eval.Charts;
import org.attnskip.eval.ModelSource;
import org.attnskip.eval.ReportTables;
import org.attnskip.eval.ReportWriter;
import org.attnskip.eval.SweepReport;
import org.attnskip.eval.ThresholdSweep;
import org.attnskip.rewrite.FreezeKv;
import org.attnskip.rewrite.Mode;
import org.attnskip.onnx.BadInputException;
import org.attnskip.runtime.Tokenizer;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;

@Command(name = "sweep",
        description = {"Rewrite a model at each threshold (in a temporary directory) and evaluate every variant against",
                "the baseline: quality and latency against threshold, the quality-latency Pareto frontier and a",
                "recommended threshold. Writes report.json, report.md, report.html and PNG charts."})
public final class SweepCommand implements Callable<Integer> {
    @Parameters(index = "0", paramLabel = "MODEL", description = ".onnx, model directory or llama2.c .bin")
    Path model;

    @Option(names = "--mode", defaultValue = "drop", paramLabel = "drop|freeze|random", description = "(default: ${DEFAULT-VALUE})")
    String mode;

    @Option(names = "--thresholds", defaultValue = "0,0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,1.0", paramLabel = "LIST",
            description = "fractions f in [0,1]; layers i >= ceil(f*L) change (default: ${DEFAULT-VALUE})")
    String thresholds;

    @Option(names = "--freeze-kv", paramLabel = "paper|single-input",
            description = "freeze mode: the flavour, as optimize --freeze-kv (default: single-input)")
    String freezeKv;

    @Option(names = "--noise", defaultValue = "gaussian", description = "random mode: gaussian, angle:DEGREES or shuffle")
    String noise;

    @Option(names = "--noise-seed", defaultValue = "0", description = "random mode: the noise seed")
    long noiseSeed;

    @Option(names = "--ppl-tolerance", defaultValue = "0.05",
            description = "recommend only thresholds whose perplexity is within this fraction of the baseline's (default: ${DEFAULT-VALUE})")
    double pplTolerance;

    @Mixin
    EvalOptions options;

    @Mixin
    CompensationOptions compensation;

    @Override
    public Integer call() {
        Mode m = Mode.parse(mode, "--mode");
        compensation.check(m == Mode.DROP);
        List<String> list = ThresholdSweep.parseThresholds(thresholds);
        if (freezeKv != null && m != Mode.FREEZE) {
            throw new BadInputException("--freeze-kv applies to --mode freeze only");
        }
        FreezeKv flavour = freezeKv == null ? FreezeKv.DEFAULT : FreezeKv.parse(freezeKv);
        var settings = options.settings();
        try (ScratchDir scratch = new ScratchDir("attnskip-sweep")) {
            ModelSource source = ModelSource.resolve(model, options.tokenizer, scratch.path());
            settings = settings.fittedTo(source.maxPositions(), note -> System.err.println("attnskip: " + note));
            Tokenizer tokenizer = EvalOptions.tokenizer(source, EvalCommand.vocabOf(source));
            Map<String, Object> config = options.config();
            config.put("model", source.described());
            config.put("mode", mode);
            config.put("thresholds", list);
            if (m == Mode.FREEZE) {
                config.put("freeze_kv", flavour.label);
            }
            if (m == Mode.RANDOM) {
                config.put("noise", noise);
                config.put("noise_seed", noiseSeed);
                config.put("random_scoring", "one pass per prefix (only a random graph's last position is defined)");
            }
            ThresholdSweep sweep = new ThresholdSweep(settings, m, noise, noiseSeed, pplTolerance).freezeKv(flavour);
            if (compensation.enabled()) {
                sweep.compensatedBy(compensation.forModel(source, tokenizer, settings.device(), scratch.path(), options.quiet));
                config.putAll(compensation.config());
            }
            SweepReport report = sweep.run(source.onnx(), list, tokenizer,
                    options.documents(), options.loadTasks(), scratch.path(), config, Main.VERSION);
            Map<String, byte[]> charts = new java.util.LinkedHashMap<>(Charts.forSweep(report));
            if (compensation.enabled()) {
                charts.putAll(Charts.forSweepModes(withPlainDropAndFreeze(report, source, list, tokenizer, scratch.path(),
                        settings)));
            }
            ReportWriter.write(options.report, report, "attnskip sweep (" + m.label
                            + (compensation.enabled() ? ", compensated linear" : "") + ")",
                    ReportTables.forSweep(report), charts);
            if (options.json) {
                System.out.println(ReportWriter.json(report));
                return 0;
            }
            ReportTables.Table table = ReportTables.forSweep(report).get(1);
            System.out.println(String.join(" | ", table.header()));
            table.rows().forEach(r -> System.out.println(String.join(" | ", r)));
            System.out.println("recommended threshold: " + (report.recommendedThreshold() == null ? "none" : report.recommendedThreshold()));
            System.out.println("report: " + options.report.resolve("report.html"));
        }
        return 0;
    }

    /**
     * A calibrated sweep is compared with plain drop and freeze (--freeze-kv's flavour) at the same
     * thresholds: each is swept too, its full report written under the report directory
     * (plain-drop/, freeze/), and all three returned for the one chart.
     */
    private Map<String, SweepReport> withPlainDropAndFreeze(SweepReport compensated, ModelSource source, List<String> list,
                                                            Tokenizer tokenizer, Path scratch,
                                                            org.attnskip.eval.EvalSettings settings) {
        Map<String, SweepReport> sweeps = new java.util.LinkedHashMap<>();
        sweeps.put("drop", null);
        sweeps.put("drop, compensated linear", compensated);
        FreezeKv flavour = freezeKv == null ? FreezeKv.DEFAULT : FreezeKv.parse(freezeKv);
        sweeps.put("freeze (" + flavour.label + ")", null);
        for (Mode other : List.of(Mode.DROP, Mode.FREEZE)) {
            Map<String, Object> config = options.config();
            config.put("model", source.described());
            config.put("mode", other.label);
            config.put("thresholds", list);
            config.put("compared_with", "the calibrated drop sweep in the parent directory");
            SweepReport r = new ThresholdSweep(settings, other, noise, noiseSeed, pplTolerance).freezeKv(flavour)
                    .run(source.onnx(), list, tokenizer, options.documents(), options.loadTasks(), scratch, config, Main.VERSION);
            String dir = other == Mode.DROP ? "plain-drop" : "freeze";
            ReportWriter.write(options.report.resolve(dir), r, "attnskip sweep (" + dir + ", for comparison)",
                    ReportTables.forSweep(r), Charts.forSweep(r));
            sweeps.put(other == Mode.DROP ? "drop" : "freeze (" + flavour.label + ")", r);
        }
        return sweeps;
    }
}
