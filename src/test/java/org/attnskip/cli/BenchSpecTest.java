package org.attnskip.cli;

import ai.onnxruntime.OrtSession.SessionOptions.OptLevel;
import org.attnskip.export.ExportDtype;
import org.attnskip.export.LlamaOnnxExporter;
import org.attnskip.export.SyntheticWeights;
import org.attnskip.onnx.BadInputException;
import org.attnskip.onnx.OnnxModelIO;
import org.attnskip.runtime.Device;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** bench's MODEL#key=value session settings. */
class BenchSpecTest {
    @TempDir
    Path tmp;

    @Test
    void optAndThreadsSettingsReachTheSessionSettings() {
        Path file = tmp.resolve("model.onnx");
        OnnxModelIO.save(LlamaOnnxExporter.export(SyntheticWeights.generate("layers=1,hidden=16,heads=2,ffn=32,vocab=32,seq=16", 1),
                ExportDtype.FLOAT), null, file, false);
        BenchCommand.Spec spec = BenchCommand.spec(file + "#opt=basic,threads=2", Device.CPU);
        assertEquals(OptLevel.BASIC_OPT, spec.settings().optimization());
        assertEquals(2, spec.settings().intraOpThreads());
        assertEquals("model.onnx#opt=basic,threads=2", spec.label());
        assertEquals(OptLevel.NO_OPT, BenchCommand.spec(file + "#opt=none", Device.CPU).settings().optimization());
        assertEquals(OptLevel.ALL_OPT, BenchCommand.spec(file.toString(), Device.CPU).settings().optimization());
        BadInputException bad = assertThrows(BadInputException.class, () -> BenchCommand.spec(file + "#opt=fast", Device.CPU));
        assertEquals("opt must be none, basic, extended or all, got 'fast' in " + file + "#opt=fast", bad.getMessage());
    }

    @Test
    void prepackingIsOnUnlessTurnedOff() {
        Path file = tmp.resolve("model.onnx");
        OnnxModelIO.save(LlamaOnnxExporter.export(SyntheticWeights.generate("layers=1,hidden=16,heads=2,ffn=32,vocab=32,seq=16", 1),
                ExportDtype.FLOAT), null, file, false);
        assertEquals(true, BenchCommand.spec(file.toString(), Device.CPU).settings().prepacking());
        assertEquals(false, BenchCommand.spec(file + "#prepack=off", Device.CPU).settings().prepacking());
        assertEquals(true, BenchCommand.spec(file + "#prepack=on", Device.CPU).settings().prepacking());
        BadInputException bad = assertThrows(BadInputException.class, () -> BenchCommand.spec(file + "#prepacking=off", Device.CPU));
        assertEquals("unknown session setting 'prepacking' in " + file + "#prepacking=off"
                + " (threads, spinning, opt, mempattern, arena, prepack)", bad.getMessage());
    }
}
