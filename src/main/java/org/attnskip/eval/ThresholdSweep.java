package org.attnskip.eval;

import org.attnskip.onnx.BadInputException;
import org.attnskip.reference.Noise;
import org.attnskip.rewrite.ChangeReport;
import org.attnskip.rewrite.FreezeForm;
import org.attnskip.rewrite.FreezeKv;
import org.attnskip.rewrite.LayerSelection;
import org.attnskip.rewrite.Mode;
import org.attnskip.rewrite.Rewrite;
import org.attnskip.rewrite.RewriteRequest;
import org.attnskip.runtime.DecoderSession;
import org.attnskip.runtime.Tokenizer;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Rewrites a model at each threshold (drop, freeze or random, through the rewrite passes, into a
 * scratch directory) and evaluates every variant against the one open baseline. The recommended
 * threshold is the fastest point of the quality-latency Pareto frontier whose perplexity stays
 * within the tolerance; latency is decode latency for drop and random, prefill for freeze (what
 * each manipulation saves).
 */
public final class ThresholdSweep {
    private final Evaluation evaluation;
    private final Mode mode;
    private final String noise;
    private final long noiseSeed;
    private final double perplexityTolerance;
    private DropCompensation compensation;
    private FreezeKv freezeKv = FreezeKv.DEFAULT;

    public ThresholdSweep(EvalSettings settings, Mode mode, String noise, long noiseSeed, double perplexityTolerance) {
        this.evaluation = new Evaluation(settings);
        this.mode = mode;
        this.noise = noise;
        this.noiseSeed = noiseSeed;
        this.perplexityTolerance = perplexityTolerance;
    }

    /** Drop mode then rewrites each threshold as calibrated drop, with maps the compensation fits. */
    public ThresholdSweep compensatedBy(DropCompensation compensation) {
        this.compensation = compensation;
        return this;
    }

    /** The freeze flavour that freeze mode rewrites with (default {@link FreezeKv#DEFAULT}). */
    public ThresholdSweep freezeKv(FreezeKv flavour) {
        this.freezeKv = flavour;
        return this;
    }

    public SweepReport run(Path baseline, List<String> thresholds, Tokenizer tokenizer, List<String> documents, List<Task> tasks,
                           Path scratch, Map<String, Object> config, String toolVersion) {
        List<SweepPoint> points = new ArrayList<>();
        try (DecoderSession b = evaluation.open(baseline)) {
            ScoringModel base = new ScoringModel(b);
            Provenance provenance = evaluation.provenance(b.opened(), toolVersion);
            // random graphs are defined only for full-sequence passes: the generation loop cannot run them
            GreedyBaseline greedy = mode == Mode.RANDOM ? null
                    : evaluation.greedyBaseline(b, tokenizer, documents, Evaluation.SWEEP_GENERATION_PROMPTS);
            for (String threshold : thresholds) {
                Path variantFile = scratch.resolve("variant-" + threshold + ".onnx");
                ChangeReport change = rewrite(baseline, threshold, variantFile, toolVersion, false);
                // freeze: quality from the graph that scores every position in one pass, latency from
                // the deployable graph (last position only in prefill); both equal the reference.
                Path timedFile = variantFile;
                if (mode == Mode.FREEZE) {
                    timedFile = scratch.resolve("variant-" + threshold + "-deployable.onnx");
                    rewrite(baseline, threshold, timedFile, toolVersion, true);
                }
                try (DecoderSession v = evaluation.open(variantFile);
                     DecoderSession timed = timedFile == variantFile ? null : evaluation.open(timedFile)) {
                    ScoringModel scored = new ScoringModel(v);
                    Evaluation.PointResult r = evaluation.measure(base, scored, timed == null ? scored : new ScoringModel(timed),
                            tokenizer, documents, tasks, "f=" + threshold);
                    // freeze generates with the deployable graph, the one a user would run
                    GenerationAgreement generation = greedy == null ? null : greedy.against(timed == null ? v : timed);
                    points.add(new SweepPoint(Double.parseDouble(threshold), change.layers(), r.text(), r.tasks(), generation,
                            r.latency()));
                } finally {
                    delete(variantFile);
                    delete(timedFile);
                }
            }
            String axis = mode == Mode.FREEZE ? "prefill" : "decode";
            java.util.function.ToDoubleFunction<SweepPoint> cost = axis.equals("prefill") ? SweepPoint::prefillRatio
                    : SweepPoint::decodeRatio;
            List<SweepPoint> front = Pareto.frontier(points, cost, SweepPoint::perplexityRatio);
            SweepPoint recommended = Pareto.recommend(front, cost, SweepPoint::perplexityRatio, 1 + perplexityTolerance);
            return new SweepReport(config, provenance, Evaluation.info(baseline, base), mode.label, points, axis,
                    front.stream().map(SweepPoint::threshold).toList(),
                    recommended == null ? null : recommended.threshold(), perplexityTolerance);
        }
    }

    private ChangeReport rewrite(Path baseline, String threshold, Path out, String toolVersion, boolean deployableFreeze) {
        Rewrite rewrite = Rewrite.load(baseline);
        LayerSelection selection = LayerSelection.fromFraction(threshold, rewrite.layout().numLayers());
        RewriteRequest request = switch (mode) {
            case DROP -> {
                if (compensation == null) {
                    yield RewriteRequest.drop(RewriteRequest.DEFAULT_CONTEXT);
                }
                DropCompensation.Fitted fitted = compensation.fit(baseline, selection);
                yield RewriteRequest.compensatedDrop(fitted.maps(), fitted.metadata(), RewriteRequest.DEFAULT_CONTEXT);
            }
            case FREEZE -> RewriteRequest.freeze(freezeKv, deployableFreeze ? FreezeForm.DEPLOYABLE : FreezeForm.EVALUATION);
            case RANDOM -> RewriteRequest.random(Noise.parse(noise), noiseSeed);
        };
        return rewrite.write(request, selection, out, toolVersion);
    }

    private static void delete(Path file) {
        try {
            Files.deleteIfExists(file);
            Files.deleteIfExists(file.resolveSibling(file.getFileName() + ".data"));
        } catch (IOException ignored) {
            // scratch space; the caller removes the directory
        }
    }

    public static List<String> parseThresholds(String list) {
        List<String> out = new ArrayList<>();
        for (String part : list.split(",")) {
            String t = part.trim();
            if (t.isEmpty()) {
                continue;
            }
            try {
                double f = Double.parseDouble(t);
                if (f < 0 || f > 1) {
                    throw new BadInputException("threshold " + t + " is outside [0, 1]");
                }
            } catch (NumberFormatException e) {
                throw new BadInputException("threshold '" + t + "' is not a number");
            }
            out.add(t);
        }
        if (out.isEmpty()) {
            throw new BadInputException("--thresholds names no threshold");
        }
        return out;
    }
}
