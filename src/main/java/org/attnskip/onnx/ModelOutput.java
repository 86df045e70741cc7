package org.attnskip.onnx;

import ai.onnx.proto.OnnxMl.ModelProto;
import ai.onnx.proto.OnnxMl.TensorProto;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.HashSet;
import java.util.Set;
import java.util.stream.Stream;

/**
 * Writes a rewritten model where the user asked: a file for a file, or a model directory for a
 * model directory (its config and tokenizer files carried over). Either way nothing appears at
 * the target until everything is written.
 */
public final class ModelOutput {
    private ModelOutput() {
    }

    public static void write(Path userInput, LoadedModel source, ModelProto rewritten, Path target) {
        Path out = target.toAbsolutePath().normalize();
        if (out.equals(source.file()) || out.equals(userInput.toAbsolutePath().normalize())) {
            throw new BadInputException("the output " + target + " is the input; write to another path");
        }
        OutputPath.refuseLink(out);
        if (!Files.isDirectory(userInput)) {
            if (Files.isDirectory(out)) {
                out = out.resolve(source.file().getFileName());
                OutputPath.refuseLink(out);
            }
            OnnxModelIO.save(source, rewritten, out);
            return;
        }
        refuseReplacingOther(out, source.file().getFileName().toString());
        writeDirectory(source, rewritten, out);
    }

    private static void writeDirectory(LoadedModel source, ModelProto rewritten, Path out) {
        Path parent = out.getParent();
        Path staging = null;
        Path old = null;
        try {
            Files.createDirectories(parent);
            LeftoverTemps.clean(out);
            staging = Files.createTempDirectory(parent, LeftoverTemps.partialPrefix(out));
            Set<String> modelFiles = modelFileNames(source);
            try (Stream<Path> files = Files.list(source.baseDir())) {
                for (Path f : files.toList()) {
                    if (Files.isRegularFile(f) && !modelFiles.contains(f.getFileName().toString())) {
                        OutputPath.refuseLinkOutOf(source.baseDir(), f);
                        Files.copy(f, staging.resolve(f.getFileName()));
                    }
                }
            }
            OnnxModelIO.save(source, rewritten, staging.resolve(source.file().getFileName()));
            if (Files.exists(out)) {
                old = LeftoverTemps.asideName(out);
                Files.move(out, old, StandardCopyOption.ATOMIC_MOVE);
            }
            try {
                Files.move(staging, out, StandardCopyOption.ATOMIC_MOVE);
            } catch (IOException | RuntimeException e) {
                if (old != null) {
                    Files.move(old, out, StandardCopyOption.ATOMIC_MOVE); // the earlier output, whole, back in place
                    old = null;
                }
                throw e;
            }
            staging = null;
        } catch (IOException e) {
            throw new BadInputException("cannot write " + out + ": " + e.getMessage(), e);
        } finally {
            LeftoverTemps.deleteTree(staging);
            LeftoverTemps.deleteTree(old);
        }
    }

    /** A directory is replaced only when it holds a model of the same name, or nothing. */
    private static void refuseReplacingOther(Path out, String modelName) {
        if (!Files.exists(out)) {
            return;
        }
        boolean replaceable;
        try (Stream<Path> files = Files.list(out)) {
            replaceable = Files.isRegularFile(out.resolve(modelName)) || files.findAny().isEmpty();
        } catch (IOException e) {
            replaceable = false;
        }
        if (!replaceable) {
            throw new BadInputException("output " + out + " exists and is not a model directory holding "
                    + modelName + "; refusing to replace it");
        }
    }

    /** The model file and every external data file it uses: these are rewritten, not copied. */
    private static Set<String> modelFileNames(LoadedModel source) {
        Set<String> names = new HashSet<>();
        names.add(source.file().getFileName().toString());
        for (TensorProto t : source.proto().getGraph().getInitializerList()) {
            if (ExternalData.isExternal(t)) {
                names.add(Path.of(ExternalData.of(t).location()).getFileName().toString());
            }
        }
        return names;
    }
}
