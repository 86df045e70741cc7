package org.attnskip.runtime;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SessionThreadsTest {
    @TempDir
    Path tmp;

    @Test
    void oneThreadBelowTheSmallModelSizeCountingExternalData() throws IOException {
        Path small = Files.createDirectories(tmp.resolve("small")).resolve("model.onnx");
        sized(small, 1 << 20);
        assertEquals(1 << 20, OrtSessionFactory.modelBytes(small));
        assertEquals(1, OrtSessionFactory.threadsFor(small));

        Path big = Files.createDirectories(tmp.resolve("big")).resolve("model.onnx");
        sized(big, 40_000);
        sized(big.resolveSibling("model.onnx.data"), OrtSessionFactory.SMALL_MODEL_BYTES);
        sized(big.resolveSibling("other.onnx"), 5); // another graph's file is not this model's weights
        assertEquals(40_000 + OrtSessionFactory.SMALL_MODEL_BYTES, OrtSessionFactory.modelBytes(big));
        assertEquals(Runtime.getRuntime().availableProcessors(), OrtSessionFactory.threadsFor(big));

        // a save over an earlier single-file model names its data NAME.N.data
        Path resaved = Files.createDirectories(tmp.resolve("resaved")).resolve("fast.onnx");
        sized(resaved, 40_000);
        sized(resaved.resolveSibling("fast.onnx.1.data"), OrtSessionFactory.SMALL_MODEL_BYTES);
        sized(resaved.resolveSibling("fast.onnx.x.data"), 7); // not a name a save gives
        assertEquals(40_000 + OrtSessionFactory.SMALL_MODEL_BYTES, OrtSessionFactory.modelBytes(resaved));
    }

    @Test
    void everyCoreSpinningOnlyWhileTheMachineHasACoreToSpare() throws IOException {
        Path small = Files.createDirectories(tmp.resolve("tiny")).resolve("model.onnx");
        sized(small, 1 << 20);
        assertEquals(new OrtSessionFactory.Threading(2, true), OrtSessionFactory.automatic(small, 0.3, 2));
        assertEquals(new OrtSessionFactory.Threading(2, true), OrtSessionFactory.automatic(small, 1.9, 2));
        // busy: by the model's size, no spinning
        assertEquals(new OrtSessionFactory.Threading(1, false), OrtSessionFactory.automatic(small, 2.0, 2));
        assertEquals(new OrtSessionFactory.Threading(1, false), OrtSessionFactory.automatic(small, 14.5, 2));
        // no load average (-1) or one core: never spin
        assertEquals(new OrtSessionFactory.Threading(1, false), OrtSessionFactory.automatic(small, -1, 2));
        assertEquals(new OrtSessionFactory.Threading(1, false), OrtSessionFactory.automatic(small, 0.0, 1));
    }

    @Test
    void aShortRunOfASmallModelLeavesTheSecondCoreToTheJit() throws IOException {
        Path small = Files.createDirectories(tmp.resolve("short-small")).resolve("model.onnx");
        sized(small, 1 << 20);
        Path big = Files.createDirectories(tmp.resolve("short-big")).resolve("model.onnx");
        sized(big, 2 * OrtSessionFactory.SMALL_MODEL_BYTES);
        assertEquals(new OrtSessionFactory.Threading(1, false), OrtSessionFactory.automatic(small, 0.3, 2, true));
        assertEquals(new OrtSessionFactory.Threading(2, true), OrtSessionFactory.automatic(small, 0.3, 2, false));
        // a large model's run is long enough for the JIT: the idle machine's rule holds
        assertEquals(new OrtSessionFactory.Threading(2, true), OrtSessionFactory.automatic(big, 0.3, 2, true));
        assertEquals(new OrtSessionFactory.Threading(Runtime.getRuntime().availableProcessors(), false),
                OrtSessionFactory.automatic(big, 5.0, 2, true));
        assertTrue(OrtSessionFactory.Settings.of(Device.CPU).forShortRun().shortRun());
        assertFalse(OrtSessionFactory.Settings.of(Device.CPU).withThreads(2).shortRun());
    }

    private static void sized(Path file, long bytes) throws IOException {
        try (RandomAccessFile f = new RandomAccessFile(file.toFile(), "rw")) {
            f.setLength(bytes); // sparse: nothing is written
        }
    }
}
