package org.attnskip.onnx;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** Checks on where an output goes, shared by every writer of models. */
public final class OutputPath {
    private OutputPath() {
    }

    /**
     * Refuses an output that is a symbolic link: writing through it would land wherever it points,
     * and replacing it would silently drop a link someone planted or made on purpose.
     */
    public static void refuseLink(Path out) {
        if (Files.isSymbolicLink(out)) {
            throw new BadInputException("output " + out + " is a symbolic link; refusing to write through or replace it");
        }
    }

    /**
     * Refuses to copy a file of a model folder that is a link leading out of the folder: the output
     * would carry a file from elsewhere on this machine.
     */
    public static void refuseLinkOutOf(Path folder, Path file) {
        if (!Files.isSymbolicLink(file)) {
            return;
        }
        try {
            if (!file.toRealPath().startsWith(folder.toRealPath())) {
                throw new BadInputException("model folder file " + file + " is a link out of the folder; refusing to copy it");
            }
        } catch (IOException e) {
            throw new BadInputException("model folder file " + file + " is a dangling link: " + e.getMessage());
        }
    }
}
