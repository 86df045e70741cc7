package org.attnskip.runtime;

import org.attnskip.export.ExportDtype;
import org.attnskip.export.LlamaOnnxExporter;
import org.attnskip.export.TestLlamaWeights;
import org.attnskip.onnx.BadInputException;
import org.attnskip.onnx.OnnxModelIO;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** On a machine without CUDA (the CPU build): cuda fails in one line, auto falls back and says so. */
class OrtSessionFactoryTest {
    @TempDir
    Path tmp;

    private Path tinyModel() {
        Path file = tmp.resolve("tiny.onnx");
        OnnxModelIO.save(LlamaOnnxExporter.export(TestLlamaWeights.random(
                TestLlamaWeights.config(16, 32, 1, 2, 1, 20, 16, true, false), 1), ExportDtype.FLOAT), null, file, false);
        return file;
    }

    @Test
    void cudaWhereItCannotLoadIsOneLineOfBadInput() {
        Assumptions.assumeTrue(OrtSessionFactory.cudaProblem() != null, "skipped: this machine has CUDA");
        BadInputException e = assertThrows(BadInputException.class, () -> OrtSessionFactory.open(tinyModel(), Device.CUDA));
        assertTrue(e.getMessage().startsWith("CUDA execution provider is not available"), e.getMessage());
        assertFalse(e.getMessage().contains("\n"));
    }

    @Test
    void autoFallsBackToTheCpuAndSaysSo() {
        Assumptions.assumeTrue(OrtSessionFactory.cudaProblem() != null, "skipped: this machine has CUDA");
        try (OpenedSession s = OrtSessionFactory.open(tinyModel(), Device.AUTO)) {
            assertEquals(Device.CPU, s.device());
            assertNotNull(s.fallbackNote());
            assertTrue(s.fallbackNote().contains("CPU"), s.fallbackNote());
        }
    }

    @Test
    void cpuIsCpuWithoutANote() {
        try (OpenedSession s = OrtSessionFactory.open(tinyModel(), Device.CPU)) {
            assertEquals(Device.CPU, s.device());
            assertEquals(null, s.fallbackNote());
        }
    }

    @Test
    void unknownDeviceNameIsBadInput() {
        assertThrows(BadInputException.class, () -> Device.parse("tpu"));
        assertEquals(Device.CUDA, Device.parse("CUDA"));
    }
}
