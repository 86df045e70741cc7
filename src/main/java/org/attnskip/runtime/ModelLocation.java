package org.attnskip.runtime;

import org.attnskip.export.ModelDirectory;
import org.attnskip.onnx.BadInputException;
import org.attnskip.onnx.OnnxModelIO;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The files behind a model a user names: a model directory from {@code attnskip export} (graph,
 * tokenizer and architecture), or a bare .onnx file with its tokenizer given separately.
 *
 * @param tokenizerKind null when the kind is to be told from the file
 * @param vocabSize     -1 when only the graph can tell
 * @param maxPositions  Integer.MAX_VALUE when unknown
 * @param name          the directory's or the file's name, without .onnx
 */
public record ModelLocation(Path modelFile, Path tokenizerFile, String tokenizerKind, int vocabSize, int maxPositions,
                            String name) {

    public static ModelLocation resolve(Path model, Path tokenizerOverride) {
        ModelLocation found;
        if (Files.isDirectory(model) && ModelDirectory.isModelDirectory(model)) {
            ModelDirectory dir = ModelDirectory.read(model);
            Path tokenizer = tokenizerOverride != null ? tokenizerOverride : dir.tokenizerFile();
            if (tokenizer == null) {
                throw new BadInputException("model directory " + model + " has no tokenizer; name one with --tokenizer FILE");
            }
            found = new ModelLocation(dir.modelFile(), tokenizer,
                    tokenizerOverride != null ? null : dir.manifest().tokenizer().kind(),
                    dir.manifest().architecture().vocab(), dir.manifest().architecture().maxPositions(),
                    model.toAbsolutePath().normalize().getFileName().toString());
        } else {
            Path file = OnnxModelIO.resolveModelFile(model);
            if (tokenizerOverride == null) {
                throw new BadInputException("an .onnx file needs --tokenizer FILE (or give a model directory from 'attnskip export')");
            }
            String n = file.getFileName().toString();
            found = new ModelLocation(file, tokenizerOverride, null, -1, Integer.MAX_VALUE,
                    n.endsWith(".onnx") ? n.substring(0, n.length() - 5) : n);
        }
        if (!Files.isRegularFile(found.tokenizerFile())) {
            throw new BadInputException("no such tokenizer file: " + found.tokenizerFile());
        }
        return found;
    }
}
