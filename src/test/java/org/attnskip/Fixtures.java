package org.attnskip;

import org.junit.jupiter.api.Assumptions;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Where the shared test models live: {@code ../shared} by default, or the directory named by the
 * ATTNSKIP_FIXTURES environment variable or the attnskip.fixtures system property. Tests that
 * need a fixture that is missing are skipped with a message saying so.
 */
public final class Fixtures {
    private Fixtures() {
    }

    public static Path root() {
        String env = System.getenv("ATTNSKIP_FIXTURES");
        if (env != null && !env.isBlank()) {
            return Path.of(env);
        }
        String prop = System.getProperty("attnskip.fixtures");
        return Path.of(prop != null && !prop.isBlank() ? prop : "../shared");
    }

    /** A path under the fixtures root; skips the calling test when it does not exist. */
    public static Path require(String relative) {
        Path p = root().resolve(relative);
        Assumptions.assumeTrue(Files.exists(p),
                "skipped: fixture " + p + " is missing (set ATTNSKIP_FIXTURES to the shared folder)");
        return p;
    }

    public static Path model(String relative) {
        return require("models/" + relative);
    }
}
