package org.attnskip.cli;

import org.attnskip.eval.DropCompensation;
import org.attnskip.eval.ModelSource;
import org.attnskip.onnx.BadInputException;
import org.attnskip.probe.CalibrationText;
import org.attnskip.probe.LinearCalibration;
import org.attnskip.probe.OutputRefinement;
import org.attnskip.probe.OutputRefinementStep;
import org.attnskip.runtime.Device;
import org.attnskip.runtime.Tokenizer;
import org.attnskip.runtime.TokenizerFiles;
import picocli.CommandLine.Option;

import java.nio.file.Files;
import java.nio.file.Path;

/** Calibrated drop's options, shared by optimize and sweep. */
final class CompensationOptions {
    /** Null options mean these; picocli defaults would hide whether the user gave the option. */
    private static final long DEFAULT_TOKENS = 16384;
    private static final double DEFAULT_RIDGE = 0.01;
    private static final int DEFAULT_REFINE_EPOCHS = OutputRefinement.Settings.DEFAULT.epochs();

    @Option(names = "--compensate", paramLabel = "linear",
            description = {"with drop: replace each dropped attention sub-block by a per-token linear map of its norm output,",
                    "W . norm(x) + b, fitted by ridge regression on --calibration-text, lowest layer first"})
    String compensate;

    @Option(names = "--calibration-text", paramLabel = "FILE",
            description = "with --compensate: text to fit the maps on, JSONL {\"text\": ...} or plain text")
    Path calibrationText;

    @Option(names = "--calibration-tokens", paramLabel = "N",
            description = "with --compensate: tokens of calibration text to use, documents in file order (default: 16384)")
    Long calibrationTokens;

    @Option(names = "--ridge", paramLabel = "R",
            description = {"with --compensate: ridge lambda = R * trace(C) / dim, C the centred scatter of the norm outputs",
                    "(R times its mean eigenvalue); the bias is not penalised (default: 0.01)"})
    Double ridge;

    @Option(names = "--rank", paramLabel = "R",
            description = "with --compensate: keep the fitted map's R largest singular values, two thin MatMuls (default: full rank)")
    Integer rank;

    @Option(names = "--calibration-target", paramLabel = "branch|stream",
            description = {"with --compensate: fit each map to the attention branch of the model as calibrated so far (branch),",
                    "or to the original model's stream after the attention add minus the stream arriving (stream),",
                    "which also undoes the drift the maps below leave (default: stream where the graph has",
                    "each layer's arriving stream as a value, else branch)"})
    String target;

    @Option(names = "--refine-epochs", paramLabel = "N",
            description = {"with --compensate: when the dropped layers are the top block and the model is a directory attnskip",
                    "export wrote, train the fitted maps N passes over the calibration text to minimise the output's KL",
                    "to the original model (0: keep the ridge fit; default: 3)"})
    Integer refineEpochs;

    boolean enabled() {
        return compensate != null;
    }

    /** Refuses calibration options that would be ignored, and malformed ones. */
    void check(boolean dropMode) {
        if (compensate == null) {
            if (calibrationText != null || calibrationTokens != null || ridge != null || rank != null || target != null
                    || refineEpochs != null) {
                throw new BadInputException("--calibration-text, --calibration-tokens, --ridge, --rank, --calibration-target"
                        + " and --refine-epochs need --compensate linear");
            }
            return;
        }
        if (!compensate.equals("linear")) {
            throw new BadInputException("--compensate " + compensate + ": the only compensation is 'linear'");
        }
        if (!dropMode) {
            throw new BadInputException("--compensate applies to drop only (--drop-attn-above, --drop-attn-layers, --drop-attn)");
        }
        if (calibrationText == null) {
            throw new BadInputException("--compensate linear needs --calibration-text FILE");
        }
        if (!Files.isRegularFile(calibrationText)) {
            throw new BadInputException("no such calibration text file: " + calibrationText);
        }
        if (calibrationTokens != null && calibrationTokens < 2) {
            throw new BadInputException("--calibration-tokens must be at least 2");
        }
        if (ridge != null && !(ridge >= 0 && Double.isFinite(ridge))) {
            throw new BadInputException("--ridge " + ridge + ": must be a number >= 0");
        }
        target();
        if (rank != null && rank < 1) {
            throw new BadInputException("--rank " + rank + ": must be at least 1");
        }
        if (refineEpochs != null && refineEpochs < 0) {
            throw new BadInputException("--refine-epochs " + refineEpochs + ": must be 0 or more");
        }
    }

    /**
     * probe: --calibration-text alone (or --compensate linear) adds the drop-compensated curve; the
     * other calibration options are checked as for optimize.
     */
    boolean checkForProbe() {
        if (compensate == null && calibrationText != null) {
            compensate = "linear";
        }
        check(true);
        return enabled();
    }

    /** The compensation for a model: its calibration text tokenized once, the maps fitted per selection. */
    DropCompensation forModel(ModelSource source, Tokenizer tokenizer, Device device, Path scratch, boolean quiet) {
        return forModel(source.maxPositions(), tokenizer, device, scratch, quiet);
    }

    /** As above, for a model built for maxPositions positions (Integer.MAX_VALUE when unknown). */
    DropCompensation forModel(int maxPositions, Tokenizer tokenizer, Device device, Path scratch, boolean quiet) {
        CalibrationText text = CalibrationText.read(calibrationText, tokenizer, tokens(), maxPositions);
        double r = ridgeValue();
        int k = rank == null ? 0 : rank;
        java.util.function.Consumer<String> progress = line -> {
            if (!quiet) {
                System.err.println("attnskip: " + line);
            }
        };
        return (baseline, selection) -> {
            LinearCalibration.Target t = target == null ? LinearCalibration.defaultTarget(baseline, selection) : target();
            LinearCalibration.Calibrated c = LinearCalibration.fit(baseline, selection, text, r, k, t, scratch, device, progress);
            OutputRefinementStep.Result refined = OutputRefinementStep.apply(baseline, selection, text, c.maps(),
                    new OutputRefinement.Settings(refineEpochsValue(), OutputRefinement.Settings.DEFAULT.learningRate(),
                            OutputRefinement.Settings.DEFAULT.batch(), OutputRefinement.Settings.DEFAULT.seed()), progress);
            java.util.Map<String, String> metadata = new java.util.LinkedHashMap<>(c.metadata());
            metadata.put("refine", refined.note());
            metadata.put("params_added", Long.toString(org.attnskip.rewrite.CompensatedDropPass.parametersAdded(refined.maps())));
            return new DropCompensation.Fitted(refined.maps(), metadata);
        };
    }

    /** The target the user named; null means the default, chosen per model (LinearCalibration.defaultTarget). */
    private LinearCalibration.Target target() {
        if (target == null) {
            return null;
        }
        return switch (target) {
            case "branch" -> LinearCalibration.Target.BRANCH;
            case "stream" -> LinearCalibration.Target.STREAM;
            default -> throw new BadInputException("--calibration-target " + target + ": use branch or stream");
        };
    }

    private long tokens() {
        return calibrationTokens == null ? DEFAULT_TOKENS : calibrationTokens;
    }

    private int refineEpochsValue() {
        return refineEpochs == null ? DEFAULT_REFINE_EPOCHS : refineEpochs;
    }

    private double ridgeValue() {
        return ridge == null ? DEFAULT_RIDGE : ridge;
    }

    /** The settings as a report's config records them. */
    java.util.Map<String, Object> config() {
        java.util.Map<String, Object> c = new java.util.LinkedHashMap<>();
        c.put("compensate", compensate);
        c.put("calibration_text", calibrationText.toString());
        c.put("calibration_tokens", tokens());
        c.put("ridge", ridgeValue());
        c.put("rank", rank == null ? "full" : rank);
        c.put("refine_epochs", refineEpochsValue());
        c.put("calibration_target", target == null ? "default (stream where the graph has it, else branch)"
                : target().name().toLowerCase(java.util.Locale.ROOT));
        return c;
    }

    /** The tokenizer calibration text is encoded with: the given file, or the model's. */
    static Tokenizer tokenizer(ModelSource source) {
        if (source.tokenizer() == null) {
            throw new BadInputException("--compensate needs the model's tokenizer to read the calibration text: pass --tokenizer");
        }
        return TokenizerFiles.open(source.tokenizer(), null, EvalCommand.vocabOf(source));
    }

    /** Refuses a rank that would not make the map smaller. */
    void checkRank(int hiddenSize) {
        if (rank != null && hiddenSize > 0 && rank >= hiddenSize) {
            throw new BadInputException("--rank " + rank + " must be below the hidden size " + hiddenSize);
        }
    }
}
