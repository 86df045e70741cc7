package org.attnskip.probe;

import org.attnskip.eval.TextDocuments;
import org.attnskip.onnx.BadInputException;
import org.attnskip.runtime.Tokenizer;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;

/**
 * The token sequences a calibration runs over: the documents of a text file (JSONL or plain text),
 * in file order, each cut to the model's positions, until the token budget is reached (the last
 * one cut to fit).
 *
 * @param sha256 of the file's bytes, recorded in the calibrated model
 * @param tokens tokens in all sequences, BOS included
 */
public record CalibrationText(Path file, String sha256, List<int[]> sequences, long tokens) {

    public static CalibrationText read(Path file, Tokenizer tokenizer, long budget, int maxPositions) {
        if (budget < 2) {
            throw new BadInputException("--calibration-tokens must be at least 2");
        }
        List<int[]> sequences = new ArrayList<>();
        long total = 0;
        for (String doc : TextDocuments.read(file)) {
            if (total >= budget) {
                break;
            }
            int[] ids = tokenizer.encode(doc);
            int keep = (int) Math.min(Math.min(ids.length, maxPositions), budget - total);
            if (keep < 2) {
                continue;
            }
            sequences.add(Arrays.copyOf(ids, keep));
            total += keep;
        }
        if (total < 2) {
            throw new BadInputException(file + " gives no calibration tokens");
        }
        return new CalibrationText(file, sha256(file), List.copyOf(sequences), total);
    }

    private static String sha256(Path file) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(file)));
        } catch (IOException e) {
            throw new BadInputException("cannot read " + file + ": " + e.getMessage());
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
