package org.attnskip;

import org.junit.jupiter.api.Assumptions;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The ./attnskip launcher as a user runs it, for the tests of the launcher itself. It runs the
 * packaged jar, and builds one first where there is none, which a test must not trigger: so those
 * tests are skipped until the jar is built (.ci/run builds it before the tests).
 */
final class PackagedLauncher {
    private PackagedLauncher() {
    }

    /** Skips the calling test where no jar is packaged yet. */
    static void assumeBuilt() {
        Assumptions.assumeTrue(Files.isRegularFile(Path.of("target/attnskip.jar")),
                "skipped: no target/attnskip.jar yet (the launcher runs the packaged jar and would build it first)");
    }

    /** A process that runs {@code ./attnskip ARGS...} from the repository's root. */
    static ProcessBuilder command(String... args) {
        List<String> command = new ArrayList<>(List.of("sh", "attnskip"));
        command.addAll(List.of(args));
        return new ProcessBuilder(command);
    }
}
