package org.attnskip.cli;

import org.attnskip.eval.Charts;
import org.attnskip.eval.EvalReport;
import org.attnskip.eval.Evaluation;
import org.attnskip.eval.ModelSource;
import org.attnskip.eval.ReportTables;
import org.attnskip.eval.ReportWriter;
import org.attnskip.runtime.Tokenizer;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.util.Map;
import java.util.concurrent.Callable;

@Command(name = "eval",
        description = {"Compare a baseline and a variant on ONNX Runtime with identical inputs: perplexity, top-1",
                "agreement and KL on text, log-likelihood accuracy on JSONL tasks, and interleaved latency.",
                "Writes report.json, report.md, report.html and PNG charts."})
public final class EvalCommand implements Callable<Integer> {
    @Option(names = "--baseline", required = true, paramLabel = "MODEL", description = ".onnx, model directory or llama2.c .bin")
    java.nio.file.Path baseline;

    @Option(names = "--variant", required = true, paramLabel = "MODEL", description = "the rewritten model (.onnx or directory)")
    java.nio.file.Path variant;

    @Mixin
    EvalOptions options;

    @Override
    public Integer call() {
        var settings = options.settings();
        try (ScratchDir scratch = new ScratchDir("attnskip-eval")) {
            ModelSource base = ModelSource.resolve(baseline, options.tokenizer, scratch.path());
            ModelSource var = ModelSource.resolve(variant, options.tokenizer, scratch.path());
            settings = settings.fittedTo(Math.min(base.maxPositions(), var.maxPositions()), note -> System.err.println("attnskip: " + note));
            Tokenizer tokenizer = EvalOptions.tokenizer(base.tokenizer() != null ? base : var, vocabOf(base));
            Map<String, Object> config = options.config();
            config.put("baseline", base.described());
            config.put("variant", var.described());
            EvalReport report = new Evaluation(settings).compare(base.onnx(), var.onnx(), tokenizer, options.documents(),
                    options.loadTasks(), config, Main.VERSION);
            ReportWriter.write(options.report, report, "attnskip eval", ReportTables.forEval(report), Charts.forEval(report));
            if (options.json) {
                System.out.println(ReportWriter.json(report));
                return 0;
            }
            printSummary(report);
            System.out.println("report: " + options.report.resolve("report.html"));
        }
        return 0;
    }

    static int vocabOf(ModelSource source) {
        try (var s = org.attnskip.runtime.DecoderSession.open(source.onnx(), org.attnskip.runtime.Device.CPU)) {
            return s.vocabSize();
        }
    }

    static void printSummary(EvalReport r) {
        System.out.println("provider     " + r.provenance().providerUsed() + ", ONNX Runtime " + r.provenance().onnxRuntimeVersion());
        if (r.text() != null) {
            System.out.printf("perplexity   %s -> %s (diff %s)%n", ConsoleFormat.est(r.text().baselinePerplexity()),
                    ConsoleFormat.est(r.text().variantPerplexity()), ConsoleFormat.est(r.text().perplexityDifference()));
            System.out.printf("agreement    top-1 %s, mean KL %s%n", ConsoleFormat.est(r.text().top1Agreement()),
                    ConsoleFormat.est(r.text().meanKl()));
        }
        r.tasks().forEach(t -> System.out.printf("task         %s: %s -> %s%n", t.task(),
                ConsoleFormat.est(t.baselineAccuracy()), ConsoleFormat.est(t.variantAccuracy())));
        if (r.latency() != null) {
            r.latency().prefill().forEach(p -> System.out.printf("prefill %4d  %.3f ms -> %.3f ms (x%.3f)%n", p.tokens(),
                    p.baseline().medianMs(), p.variant().medianMs(), p.ratio()));
            r.latency().decode().forEach(p -> System.out.printf("decode  %4d  %.3f ms -> %.3f ms (x%.3f)%n", p.tokens(),
                    p.baseline().medianMs(), p.variant().medianMs(), p.ratio()));
        }
    }
}
