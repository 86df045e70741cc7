package org.attnskip.cli;

import org.attnskip.eval.DropCompensation;
import org.attnskip.eval.ModelSource;
import org.attnskip.onnx.BadInputException;
import org.attnskip.probe.CalibrationText;
import org.attnskip.probe.LinearCalibration;
import org.attnskip.runtime.Device;
import org.attnskip.runtime.Tokenizer;
import org.attnskip.runtime.TokenizerFiles;
import picocli.CommandLine.Option;

import java.nio.file.Files;
import java.nio.file.Path;

/** Calibrated drop's options, shared by optimize and sweep. */
final class CompensationOptions {
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

    boolean enabled() {
        return compensate != null;
    }

    /** Refuses calibration options that would be ignored, and malformed ones. */
    void check(boolean dropMode) {
        if (compensate == null) {
            if (calibrationText != null || calibrationTokens != null || ridge != null || rank != null) {
                throw new BadInputException("--calibration-text, --calibration-tokens, --ridge and --rank need --compensate linear");
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
        if (rank != null && rank < 1) {
            throw new BadInputException("--rank " + rank + ": must be at least 1");
        }
    }

    /** The compensation for a model: its calibration text tokenized once, the maps fitted per selection. */
    DropCompensation forModel(ModelSource source, Tokenizer tokenizer, Device device, Path scratch, boolean quiet) {
        CalibrationText text = CalibrationText.read(calibrationText, tokenizer, calibrationTokens == null ? 16384 : calibrationTokens,
                source.maxPositions());
        double r = ridge == null ? 0.01 : ridge;
        int k = rank == null ? 0 : rank;
        return (baseline, selection) -> {
            LinearCalibration.Calibrated c = LinearCalibration.fit(baseline, selection, text, r, k, scratch, device,
                    line -> {
                        if (!quiet) {
                            System.err.println("attnskip: " + line);
                        }
                    });
            return new DropCompensation.Fitted(c.maps(), c.metadata());
        };
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
