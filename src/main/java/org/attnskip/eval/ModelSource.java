package org.attnskip.eval;

import org.attnskip.export.ExportDtype;
import org.attnskip.export.Llama2cCheckpoint;
import org.attnskip.export.LlamaOnnxExporter;
import org.attnskip.export.LlamaWeights;
import org.attnskip.export.ModelDirectory;
import org.attnskip.onnx.BadInputException;
import org.attnskip.onnx.OnnxModelIO;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;

/**
 * What a user may name as a model to evaluate: an .onnx file, a model directory written by
 * {@code attnskip export}, or a llama2.c checkpoint (.bin), which is exported to fp32 ONNX in a
 * scratch directory first. The tokenizer is the directory's, or the one given, or a llama2.c
 * tokenizer (tok*.bin, tokenizer.bin) or tokenizer.json next to the file.
 *
 * @param tokenizer    null when none was found
 * @param maxPositions the positions the model was built for, Integer.MAX_VALUE when the file does not say
 */
public record ModelSource(Path onnx, Path tokenizer, String described, int maxPositions) {

    public ModelSource(Path onnx, Path tokenizer, String described) {
        this(onnx, tokenizer, described, Integer.MAX_VALUE);
    }

    public static ModelSource resolve(Path path, Path tokenizerOverride, Path scratch) {
        if (tokenizerOverride != null && !Files.isRegularFile(tokenizerOverride)) {
            throw new BadInputException("no such tokenizer file: " + tokenizerOverride);
        }
        if (Files.isDirectory(path)) {
            if (!ModelDirectory.isModelDirectory(path)) {
                return new ModelSource(OnnxModelIO.resolveModelFile(path), pick(tokenizerOverride, path), path.toString());
            }
            ModelDirectory dir = ModelDirectory.read(path);
            return new ModelSource(dir.modelFile(), tokenizerOverride != null ? tokenizerOverride : dir.tokenizerFile(),
                    path.toString(), dir.manifest().architecture().maxPositions());
        }
        if (!Files.isRegularFile(path)) {
            throw new BadInputException("no such model: " + path);
        }
        Path parent = path.toAbsolutePath().getParent();
        if (path.getFileName().toString().endsWith(".bin")) {
            Path onnx = scratch.resolve(path.getFileName().toString().replaceFirst("\\.bin$", "") + ".onnx");
            LlamaWeights weights = Llama2cCheckpoint.read(path);
            OnnxModelIO.save(LlamaOnnxExporter.export(weights, ExportDtype.FLOAT), null, onnx, false);
            return new ModelSource(onnx, pick(tokenizerOverride, parent), path + " (llama2.c, exported to fp32 ONNX)",
                    weights.config.seqLen());
        }
        return new ModelSource(path, pick(tokenizerOverride, parent), path.toString());
    }

    private static Path pick(Path override, Path dir) {
        if (override != null) {
            return override;
        }
        try (Stream<Path> files = Files.list(dir)) {
            List<Path> candidates = files.filter(p -> {
                String n = p.getFileName().toString();
                return n.equals("tokenizer.json") || n.equals("tokenizer.bin") || (n.startsWith("tok") && n.endsWith(".bin"));
            }).sorted().toList();
            return candidates.isEmpty() ? null : candidates.get(0);
        } catch (IOException e) {
            return null;
        }
    }
}
