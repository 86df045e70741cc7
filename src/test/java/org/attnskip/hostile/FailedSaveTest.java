package org.attnskip.hostile;

import org.attnskip.CliRun;
import org.attnskip.onnx.FileWrites;
import org.attnskip.onnx.LeftoverTemps;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.TreeMap;

import static org.attnskip.hostile.HostileFiles.assertRefused;
import static org.attnskip.hostile.HostileFiles.snapshot;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A save that fails part-way (the disk fills after N bytes, the destination is read-only) leaves the
 * complete earlier output, or nothing, and no temporary file; leftovers of a killed run are removed
 * (or an earlier output moved aside is put back) by the next save.
 */
class FailedSaveTest {
    private static final String SYNTHETIC = "layers=2,hidden=32,heads=2,ffn=64,vocab=64,seq=32";

    @TempDir
    Path tmp;

    @AfterEach
    void noFault() {
        FileWrites.injectFault(null);
    }

    private CliRun optimizeFile(double threshold) {
        return CliRun.of("optimize", HostileFiles.TINY.resolve("model.onnx").toString(), "-o",
                tmp.resolve("out/fast.onnx").toString(), "--drop-attn-above", Double.toString(threshold));
    }

    /** The run succeeds without a fault; with a full disk after {@code bytes}, it fails and changes nothing. */
    private void assertFullDiskChangesNothing(long bytes, java.util.function.Supplier<CliRun> run) {
        TreeMap<String, String> before = snapshot(tmp);
        FileWrites.injectFault(FileWrites.diskFullAfter(bytes));
        CliRun r = run.get();
        FileWrites.injectFault(null);
        assertRefused(r, "No space left on device");
        assertEquals(before, snapshot(tmp), "the earlier output whole, no temporary file");
    }

    @ParameterizedTest
    @ValueSource(longs = {0, 1, 4096, 300_000})
    void fullDiskDuringAFileSaveKeepsTheEarlierFile(long bytes) {
        assertEquals(0, optimizeFile(0.5).code());
        assertFullDiskChangesNothing(bytes, () -> optimizeFile(0.25));
    }

    @Test
    void fullDiskDuringTheFirstSaveLeavesNothing() throws IOException {
        Files.createDirectories(tmp.resolve("out"));
        assertFullDiskChangesNothing(10_000, () -> optimizeFile(0.25));
        assertFalse(Files.exists(tmp.resolve("out/fast.onnx")));
    }

    @ParameterizedTest
    @ValueSource(longs = {0, 20_000})
    void fullDiskDuringAModelDirectorySaveKeepsTheEarlierDirectory(long bytes) {
        Path out = tmp.resolve("fast");
        assertEquals(0, CliRun.of("optimize", HostileFiles.TINY.toString(), "-o", out.toString(), "--drop-attn-above", "0.5").code());
        assertFullDiskChangesNothing(bytes, () -> CliRun.of("optimize", HostileFiles.TINY.toString(), "-o", out.toString(),
                "--drop-attn-above", "0.25"));
    }

    @Test
    void fullDiskWhileExportWritesItsManifestKeepsTheEarlierExport() throws IOException {
        Path out = tmp.resolve("syn");
        assertEquals(0, CliRun.of("export", "--synthetic", SYNTHETIC, "-o", out.toString()).code());
        long modelBytes = Files.size(out.resolve("model.onnx"));
        // the model itself fits, the manifest after it does not
        assertFullDiskChangesNothing(modelBytes + 10,
                () -> CliRun.of("export", "--synthetic", SYNTHETIC, "--seed", "7", "-o", out.toString()));
    }

    @Test
    void readOnlyDestinationKeepsTheEarlierOutput() throws IOException {
        assertEquals(0, optimizeFile(0.5).code());
        Path dir = tmp.resolve("out");
        ReadOnly ro = ReadOnly.make(dir);
        try {
            TreeMap<String, String> before = snapshot(tmp);
            assertRefused(optimizeFile(0.25), "cannot write");
            assertEquals(before, snapshot(tmp));
        } finally {
            ro.undo();
        }
    }

    @Test
    void leftoversOfADeadWriterAreRemovedAndAnOutputMovedAsideIsPutBack() throws Exception {
        Process gone = new ProcessBuilder("true").start();
        gone.waitFor();
        long deadPid = gone.pid();
        Path dir = Files.createDirectories(tmp.resolve("out"));
        Path partial = dir.resolve(".fast.onnx.partial-" + deadPid + "-123.tmp");
        Path mine = dir.resolve(".fast.onnx.partial-" + ProcessHandle.current().pid() + "-9.tmp");
        Files.writeString(partial, "half a model");
        Files.writeString(mine, "a save still running");
        Path aside = dir.resolve(".fast.onnx.old-" + deadPid + "-77");
        Files.writeString(aside, "the earlier output");

        LeftoverTemps.clean(dir.resolve("fast.onnx"));

        assertFalse(Files.exists(partial), "a dead writer's partial file is removed");
        assertTrue(Files.exists(mine), "a live writer's partial file is kept");
        assertEquals("the earlier output", Files.readString(dir.resolve("fast.onnx")), "put back");
        assertFalse(Files.exists(aside));
        Files.delete(mine);
        assertEquals(0, optimizeFile(0.5).code());
        assertEquals(List.of("fast.onnx"), Files.list(dir).map(p -> p.getFileName().toString()).toList());
    }

    /** Makes a directory unwritable: chmod for ordinary users, the immutable flag for root (which chmod does not stop). */
    record ReadOnly(Path dir, boolean immutable) {
        static ReadOnly make(Path dir) throws IOException {
            Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("r-xr-xr-x"));
            if (writable(dir)) {
                ReadOnly flag = new ReadOnly(dir, true);
                run("chattr", "+i", dir.toString());
                if (writable(dir)) {
                    flag.undo();
                    Assumptions.abort("skipped: cannot make " + dir + " read-only here (root without chattr)");
                }
                return flag;
            }
            return new ReadOnly(dir, false);
        }

        void undo() throws IOException {
            if (immutable) {
                run("chattr", "-i", dir.toString());
            }
            Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxr-xr-x"));
        }

        private static boolean writable(Path dir) {
            try {
                Files.delete(Files.createTempFile(dir, "probe", ".tmp"));
                return true;
            } catch (IOException e) {
                return false;
            }
        }

        private static void run(String... cmd) {
            try {
                new ProcessBuilder(cmd).redirectErrorStream(true).start().waitFor();
            } catch (IOException e) {
                // chattr missing: writable() says so
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }
}
