package org.attnskip.eval;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/** The tables of a report, shared by the Markdown and HTML renderings. */
public final class ReportTables {
    /** A titled table; {@code note} is a line of text printed under the title (may be null). */
    public record Table(String title, String note, List<String> header, List<List<String>> rows) {
    }

    private ReportTables() {
    }

    public static List<Table> forEval(EvalReport r) {
        List<Table> tables = new ArrayList<>();
        tables.add(provenance(r.provenance(), r.baseline(), r.variant()));
        if (r.text() != null) {
            TextQuality t = r.text();
            tables.add(new Table("Text quality", t.documents() + " documents, " + t.positions()
                    + " predicted positions; 95% bootstrap intervals over documents",
                    List.of("metric", "baseline", "variant", "variant - baseline"),
                    List.of(List.of("perplexity", est(t.baselinePerplexity()), est(t.variantPerplexity()), est(t.perplexityDifference())),
                            List.of("top-1 agreement with baseline", "1", est(t.top1Agreement()), ""),
                            List.of("mean KL(baseline || variant), nats", "0", est(t.meanKl()), ""))));
        }
        if (r.tasks() != null && !r.tasks().isEmpty()) {
            tables.add(tasks(r.tasks()));
        }
        if (r.generation() != null) {
            GenerationAgreement g = r.generation();
            tables.add(new Table("Greedy generation", g.prompts() + " prompts of the documents' first " + g.promptTokens()
                    + " tokens, " + g.newTokens() + " new tokens each; 95% bootstrap intervals over prompts",
                    List.of("metric", "variant vs baseline"),
                    List.of(List.of("identical leading tokens", est(g.exactPrefixTokens())),
                            List.of("ROUGE-L F1", est(g.rougeL())))));
        }
        if (r.latency() != null) {
            tables.addAll(latency(r.latency()));
        }
        return tables;
    }

    public static List<Table> forSweep(SweepReport r) {
        List<Table> tables = new ArrayList<>();
        tables.add(provenance(r.provenance(), r.baseline(), null));
        List<String> header = new ArrayList<>(List.of("threshold", "layers changed", "ppl baseline", "ppl variant",
                "ppl diff [95% CI]", "top-1 agree [95% CI]", "mean KL [95% CI]"));
        SweepPoint first = r.points().get(0);
        for (TaskResult task : first.tasks()) {
            header.add(task.task() + " acc (diff)");
        }
        boolean generation = r.points().stream().anyMatch(p -> p.generation() != null);
        if (generation) {
            header.add("greedy identical lead tokens");
            header.add("greedy ROUGE-L");
        }
        if (first.latency() != null) {
            header.add("prefill ratio");
            header.add("decode ratio");
        }
        List<List<String>> rows = new ArrayList<>();
        for (SweepPoint p : r.points()) {
            List<String> row = new ArrayList<>();
            String mark = r.recommendedThreshold() != null && p.threshold() == r.recommendedThreshold() ? " (recommended)"
                    : r.paretoThresholds().contains(p.threshold()) ? " (Pareto)" : "";
            row.add(num(p.threshold(), 2) + mark);
            row.add(p.layers().isEmpty() ? "none" : p.layers().toString());
            if (p.text() != null) {
                row.add(num(p.text().baselinePerplexity().value(), 3));
                row.add(num(p.text().variantPerplexity().value(), 3));
                row.add(est(p.text().perplexityDifference()));
                row.add(est(p.text().top1Agreement()));
                row.add(est(p.text().meanKl()));
            } else {
                row.addAll(List.of("", "", "", "", ""));
            }
            for (TaskResult task : p.tasks()) {
                row.add(num(task.variantAccuracy().value(), 3) + " (" + signed(task.accuracyDifference().value()) + ")");
            }
            if (generation) {
                row.add(p.generation() == null ? "" : est(p.generation().exactPrefixTokens()));
                row.add(p.generation() == null ? "" : est(p.generation().rougeL()));
            }
            if (p.latency() != null) {
                row.add(num(p.prefillRatio(), 3));
                row.add(num(p.decodeRatio(), 3));
            }
            rows.add(row);
        }
        String note = "mode " + r.mode() + "; recommended: " + (r.recommendedThreshold() == null ? "none"
                : num(r.recommendedThreshold(), 2)) + " = the fastest Pareto point (by " + r.latencyAxis()
                + " latency) whose perplexity is within " + num(100 * r.perplexityTolerance(), 1) + "% of the baseline's";
        GenerationAgreement g = r.points().stream().map(SweepPoint::generation).filter(java.util.Objects::nonNull)
                .findFirst().orElse(null);
        if (g != null) {
            note += "; greedy generation: " + g.prompts() + " prompts of " + g.promptTokens() + " tokens, " + g.newTokens()
                    + " new tokens each, against the baseline's continuations";
        }
        if (first.latency() != null) {
            note += "; prefill ratio at " + first.latency().prefill().get(first.latency().prefill().size() - 1).tokens()
                    + " tokens, decode ratio at context " + first.latency().decode().get(first.latency().decode().size() - 1).tokens();
        }
        tables.add(new Table("Sweep", note, header, rows));
        return tables;
    }

    private static Table provenance(Provenance p, ModelInfo baseline, ModelInfo variant) {
        List<List<String>> rows = new ArrayList<>();
        rows.add(List.of("baseline", baseline.path()));
        if (variant != null) {
            rows.add(List.of("variant", variant.path() + " " + variant.rewrite()));
        }
        rows.add(List.of("ONNX Runtime", p.onnxRuntimeVersion()));
        rows.add(List.of("device", p.deviceRequested() + " -> " + p.providerUsed()
                + (p.fallbackNote() == null ? "" : " (" + p.fallbackNote() + ")")));
        rows.add(List.of("threads", p.intraOpThreads() + " intra-op of " + p.availableProcessors() + " cores; graph optimisation "
                + p.graphOptimization()));
        rows.add(List.of("machine", p.cpu() + "; " + p.os() + "; " + p.java()));
        rows.add(List.of("when", p.timestamp() + " (" + p.tool() + ")"));
        return new Table("Setup", null, List.of("", ""), rows);
    }

    private static Table tasks(List<TaskResult> tasks) {
        List<List<String>> rows = new ArrayList<>();
        for (TaskResult t : tasks) {
            rows.add(List.of(t.task(), t.kind(), Integer.toString(t.items()), est(t.baselineAccuracy()), est(t.variantAccuracy()),
                    est(t.accuracyDifference()), est(t.logLikelihoodDifference()), num(t.agreement(), 3)));
        }
        return new Table("Tasks (log-likelihood accuracy)", "95% bootstrap intervals over items, paired for the differences; "
                + "cloze = every continuation token is the top-1; log-likelihood of the gold answer in nats",
                List.of("task", "kind", "items", "baseline acc", "variant acc", "acc variant - baseline",
                        "gold log-likelihood variant - baseline", "same answer"), rows);
    }

    private static List<Table> latency(LatencyResult l) {
        List<Table> tables = new ArrayList<>();
        List<String> header = List.of("tokens", "baseline median / p90 / p99 ms", "variant median / p90 / p99 ms",
                "ratio (median)", "baseline tok/s", "variant tok/s");
        String note = l.warmup() + " warm-up and " + l.repeats() + " measured repetitions, baseline and variant interleaved";
        tables.add(new Table("Prefill latency", note + "; the last position's logits only, as generation asks for them",
                header, latencyRows(l.prefill())));
        tables.add(new Table("Decode latency per token", note + "; " + l.decodeStepsPerRun()
                + " timed steps per repetition after an untimed prefill of the context", header, latencyRows(l.decode())));
        tables.add(new Table("Memory", null, List.of("", "baseline", "variant"), List.of(
                List.of("KV cache at " + l.largestContext() + " positions (one sequence)", bytes(l.baselineKvBytes()), bytes(l.variantKvBytes())),
                List.of("peak memory of the whole process: baseline and variant together, not per variant ("
                        + l.processPeakMemory().source() + ")", bytes(l.processPeakMemory().bytes()), "(same process)"))));
        return tables;
    }

    private static List<List<String>> latencyRows(List<LatencyPoint> points) {
        List<List<String>> rows = new ArrayList<>();
        for (LatencyPoint p : points) {
            rows.add(List.of(Integer.toString(p.tokens()), timings(p.baseline()), timings(p.variant()), num(p.ratio(), 3),
                    num(p.baselineTokensPerSecond(), 1), num(p.variantTokensPerSecond(), 1)));
        }
        return rows;
    }

    private static String timings(Timings t) {
        return num(t.medianMs(), 3) + " / " + num(t.p90Ms(), 3) + " / " + num(t.p99Ms(), 3);
    }

    static String est(Estimate e) {
        int digits = Math.abs(e.value()) >= 100 ? 2 : 4;
        return num(e.value(), digits) + " [" + num(e.low(), digits) + ", " + num(e.high(), digits) + "]";
    }

    static String num(double v, int digits) {
        return String.format(Locale.ROOT, "%." + digits + "f", v);
    }

    private static String signed(double v) {
        return String.format(Locale.ROOT, "%+.3f", v);
    }

    static String bytes(long b) {
        if (b < 1024 * 1024) {
            return String.format(Locale.ROOT, "%.1f KB", b / 1024.0);
        }
        return String.format(Locale.ROOT, "%.1f MB", b / (1024.0 * 1024));
    }
}
