package org.attnskip;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/** The graphs committed under graphs/ are exactly what graphs/regenerate.sh's recipe writes. */
class GraphsAreReproducibleTest {
    @TempDir
    Path tmp;

    @Test
    void committedGraphsMatchTheirRecipe() throws Exception {
        Path committed = Path.of("graphs");
        Assumptions.assumeTrue(Files.isDirectory(committed.resolve("tiny-llama")), "skipped: graphs/ is not here");
        Path base = tmp.resolve("tiny-llama");
        assertEquals(0, CliRun.of("export", "--synthetic", "layers=4,hidden=64,heads=4,kv_heads=2,ffn=128,vocab=256,seq=128",
                "--seed", "0", "-o", base.toString()).code());
        assertEquals(0, CliRun.of("optimize", base.toString(), "-o", tmp.resolve("tiny-llama-drop0.5").toString(),
                "--drop-attn-above", "0.5").code());
        assertEquals(0, CliRun.of("optimize", base.toString(), "-o", tmp.resolve("tiny-llama-freeze0.5").toString(),
                "--freeze-above", "0.5").code());
        for (String dir : new String[] {"tiny-llama", "tiny-llama-drop0.5", "tiny-llama-freeze0.5"}) {
            for (String file : new String[] {"model.onnx", "attnskip.json"}) {
                assertArrayEquals(Files.readAllBytes(committed.resolve(dir).resolve(file)),
                        Files.readAllBytes(tmp.resolve(dir).resolve(file)), dir + "/" + file + " differs: run sh graphs/regenerate.sh");
            }
        }
    }
}
