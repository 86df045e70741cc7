package org.attnskip;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The ./attnskip launcher asks glibc for transparent huge pages (GLIBC_TUNABLES) for generate and serve,
 * which run one model, not for commands that compare sessions in one process; never where the user set
 * that tunable or ATTNSKIP_HUGE_PAGES=off; and it keeps the user's other tunables. A stand-in `java`
 * first on PATH prints the environment the launcher hands it, so no JVM starts.
 */
class LauncherHugePagesTest {
    @TempDir
    Path tmp;

    @Test
    void addsTheTunableAndKeepsTheUsersChoices() throws Exception {
        PackagedLauncher.assumeBuilt();
        Path java = tmp.resolve("java");
        Files.writeString(java, "#!/bin/sh\nprintf '%s' \"${GLIBC_TUNABLES-unset}\"\n");
        Files.setPosixFilePermissions(java, PosixFilePermissions.fromString("rwxr-xr-x"));

        assertEquals("glibc.malloc.hugetlb=1", tunablesSeenByJava("generate", Map.of()));
        assertEquals("glibc.malloc.hugetlb=1", tunablesSeenByJava("serve", Map.of()));
        assertEquals("unset", tunablesSeenByJava("bench", Map.of()));
        assertEquals("unset", tunablesSeenByJava("eval", Map.of()));
        assertEquals("glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1",
                tunablesSeenByJava("generate", Map.of("GLIBC_TUNABLES", "glibc.malloc.arena_max=2")));
        assertEquals("glibc.malloc.arena_max=2", tunablesSeenByJava("bench", Map.of("GLIBC_TUNABLES", "glibc.malloc.arena_max=2")));
        assertEquals("glibc.malloc.hugetlb=0",
                tunablesSeenByJava("generate", Map.of("GLIBC_TUNABLES", "glibc.malloc.hugetlb=0")));
        assertEquals("unset", tunablesSeenByJava("generate", Map.of("ATTNSKIP_HUGE_PAGES", "off")));
    }

    private String tunablesSeenByJava(String command, Map<String, String> env) throws IOException, InterruptedException {
        // without the class archive, generate runs java once, so the stand-in's output is all there is
        ProcessBuilder pb = PackagedLauncher.command(command, "model");
        pb.environment().put("ATTNSKIP_CLASS_ARCHIVE", "off");
        pb.environment().remove("GLIBC_TUNABLES");
        pb.environment().remove("ATTNSKIP_HUGE_PAGES");
        pb.environment().put("PATH", tmp + ":" + System.getenv("PATH"));
        pb.environment().putAll(env);
        pb.redirectErrorStream(true);
        Process process = pb.start();
        String out = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertEquals(0, process.waitFor(), out);
        return out;
    }
}
