package org.attnskip.hostile;

import org.attnskip.ChildJvm;
import org.attnskip.CliRun;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.TreeMap;

import static org.attnskip.hostile.HostileFiles.snapshot;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A process killed (SIGKILL) at random moments while exporting over an earlier export leaves that
 * earlier export whole or the new one whole, never a mix; the next run removes what it left.
 * Each kill needs its own JVM, so this test runs few of them; {@code -Dattnskip.kills=N} runs more.
 */
class KilledSaveTest {
    /** About 20 MB of weights, so that writing takes a while and kills land inside it too. */
    private static final String SPEC = "layers=4,hidden=256,heads=4,ffn=768,vocab=2048,seq=64";

    @TempDir
    Path tmp;

    @Test
    void aKilledExportLeavesTheOldOrTheNewDirectoryWhole() throws Exception {
        Path out = tmp.resolve("model");
        Path oldRef = tmp.resolve("ref-old");
        Path newRef = tmp.resolve("ref-new");
        assertEquals(0, CliRun.of("export", "--synthetic", SPEC, "--seed", "1", "-o", oldRef.toString()).code());
        assertEquals(0, CliRun.of("export", "--synthetic", SPEC, "--seed", "2", "-o", newRef.toString()).code());
        TreeMap<String, String> oldFiles = snapshot(oldRef);
        TreeMap<String, String> newFiles = snapshot(newRef);

        int kills = Integer.getInteger("attnskip.kills", 2);
        Random random = new Random(15);
        List<String> outcomes = new ArrayList<>();
        for (int i = 0; i < kills; i++) {
            HostileFiles.deleteTree(out);
            HostileFiles.copyTree(oldRef, out);
            Process p = new ProcessBuilder(ChildJvm.command(tmp, "export", "--synthetic", SPEC, "--seed", "2", "-o", out.toString()))
                    .redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
            // start-up and building the weights take most of the run: wait for the save to begin, then kill within it
            awaitStagingOrExit(p);
            Thread.sleep(random.nextInt(2500));
            p.destroyForcibly().waitFor();
            TreeMap<String, String> now = snapshot(out);
            assertTrue(now.equals(oldFiles) || now.equals(newFiles), "kill " + i + ": a mix of old and new: " + now);
            outcomes.add(now.equals(oldFiles) ? "old" : "new");
            // the next run cleans up whatever the killed one left beside the output
            assertEquals(0, CliRun.of("export", "--synthetic", SPEC, "--seed", "2", "-o", out.toString()).code());
            try (var left = Files.list(tmp)) {
                List<String> names = left.map(f -> f.getFileName().toString()).filter(n -> n.startsWith(".")).toList();
                assertEquals(List.of(), names, "leftovers after kill " + i);
            }
            assertEquals(newFiles, snapshot(out));
        }
        System.out.println("KilledSaveTest: " + kills + " kills, outcomes " + outcomes);
    }

    private void awaitStagingOrExit(Process p) throws Exception {
        long deadline = System.nanoTime() + 120_000_000_000L;
        while (p.isAlive() && System.nanoTime() < deadline) {
            try (var entries = Files.list(tmp)) {
                if (entries.anyMatch(f -> f.getFileName().toString().startsWith(".model.partial-"))) {
                    return;
                }
            }
            Thread.sleep(2);
        }
    }
}
