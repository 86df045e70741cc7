package org.attnskip.eval;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The trained model packed into the jar for the demo (src/main/resources/demo: the llama2.c
 * checkpoint stories-deep12 and its tokenizer, see the README there), extracted to a scratch
 * directory because the exporter and the tokenizer read files.
 */
public final class ShippedDemoModel {
    static final String RESOURCE_DIR = "demo/";
    public static final String CHECKPOINT = "stories-deep12.bin";
    static final String TOKENIZER = "tok512.bin";
    public static final String DESCRIPTION = "stories-deep12 (trained, 12 layers, 1.23 M parameters, packed in the jar)";

    private ShippedDemoModel() {
    }

    /** Writes the checkpoint and its tokenizer into {@code dir} and returns the checkpoint's path. */
    public static Path extractTo(Path dir) {
        try {
            Files.createDirectories(dir);
            copy(TOKENIZER, dir);
            return copy(CHECKPOINT, dir);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot extract the demo model to " + dir, e);
        }
    }

    private static Path copy(String name, Path dir) throws IOException {
        try (InputStream in = ShippedDemoModel.class.getClassLoader().getResourceAsStream(RESOURCE_DIR + name)) {
            if (in == null) {
                throw new IllegalStateException("the jar lacks " + RESOURCE_DIR + name + ": rebuild it with ./mvnw package");
            }
            Path target = dir.resolve(name);
            Files.copy(in, target);
            return target;
        }
    }
}
