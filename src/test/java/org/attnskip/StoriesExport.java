package org.attnskip.serve;

import org.attnskip.Fixtures;
import org.attnskip.cli.Main;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** The stories260K fixture exported by the CLI into a model directory, as the serve tests start from. */
final class StoriesExport {
    private StoriesExport() {
    }

    /** Exports stories260K to {@code tmp/name} and returns that directory. */
    static Path export(Path tmp, String name) {
        Path folder = Fixtures.model("stories260K");
        Path dir = tmp.resolve(name);
        assertEquals(0, Main.run("export", "--llama2c", folder.resolve("stories260K.bin").toString(),
                "--tokenizer", folder.resolve("tok512.bin").toString(), "-o", dir.toString()));
        return dir;
    }
}
