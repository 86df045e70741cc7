package org.attnskip;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** The stories260K fixture exported by the CLI into a model directory, as many tests start from. */
public final class StoriesExport {
    private StoriesExport() {
    }

    /** Exports stories260K to {@code tmp/name} with the given export options and returns that directory. */
    public static Path export(Path tmp, String name, String... options) {
        Path folder = Fixtures.model("stories260K");
        Path dir = tmp.resolve(name);
        String[] args = {"export", "--llama2c", folder.resolve("stories260K.bin").toString(),
                "--tokenizer", folder.resolve("tok512.bin").toString(), "-o", dir.toString()};
        String[] all = java.util.Arrays.copyOf(args, args.length + options.length);
        System.arraycopy(options, 0, all, args.length, options.length);
        CliRun run = CliRun.of(all);
        assertEquals(0, run.code(), run.err());
        return dir;
    }
}
