package org.attnskip.cli;

import org.attnskip.CliRun;
import org.attnskip.Fixtures;
import org.attnskip.export.ModelDirectory;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** export --graph fused, then generate, optimize and the refusals, end to end through Main.run. */
class FusedGraphCliTest {
    @TempDir
    Path tmp;

    @Test
    void fusedExportRecordsItsFlavourAndGeneratesRunCsText() throws IOException {
        Path folder = Fixtures.model("stories-deep12");
        Path dir = tmp.resolve("deep12-fused");
        CliRun export = CliRun.of("export", "--llama2c", folder.resolve("stories-deep12.bin").toString(),
                "--tokenizer", folder.resolve("tok512.bin").toString(), "-o", dir.toString(), "--graph", "fused");
        assertEquals(0, export.code(), export.err());
        assertTrue(export.out().contains("fused graph"), export.out());
        assertTrue(Files.readString(dir.resolve("attnskip.json")).contains("\"graph\" : \"fused\""));

        CliRun generate = CliRun.of("generate", dir.toString(), "--prompt", "Once upon a time", "-n", "200", "-t", "0",
                "--device", "cpu");
        assertEquals(0, generate.code(), generate.err());
        assertEquals(Files.readString(folder.resolve("golden/once_upon_a_time.txt")), generate.out());

        Path dropped = tmp.resolve("deep12-fused-drop");
        CliRun drop = CliRun.of("optimize", dir.toString(), "-o", dropped.toString(), "--drop-attn-above", "0.5");
        assertEquals(0, drop.code(), drop.err());
        assertTrue(Files.readString(dropped.resolve("attnskip.json")).contains("\"graph\" : \"fused\""));
        CliRun afterDrop = CliRun.of("generate", dropped.toString(), "--prompt", "Once upon a time", "-n", "20", "-t", "0",
                "--device", "cpu");
        assertEquals(0, afterDrop.code(), afterDrop.err());
        assertTrue(afterDrop.out().startsWith("Once upon a time"), afterDrop.out());
    }

    /**
     * Freeze rewrites a fused graph in both flavours and forms, except the paper flavour's evaluation
     * form, which needs the scores GroupQueryAttention hides: exit 2, one line, nothing written.
     * (Their numbers: GqaFreezeMatchesReferenceTest.)
     */
    @Test
    void freezeOnAFusedGraph() {
        Path dir = tmp.resolve("syn-fused");
        CliRun export = CliRun.of("export", "--synthetic", "layers=4,hidden=64,heads=4,kv_heads=2,ffn=96,vocab=97,seq=64",
                "-o", dir.toString(), "--graph", "fused");
        assertEquals(0, export.code(), export.err());
        int n = 0;
        for (String[] freeze : new String[][] {{"--freeze-above", "0.5"}, {"--freeze-above", "0.5", "--freeze-logits", "all"},
                {"--freeze-above", "0.5", "--freeze-kv", "paper"}}) {
            Path out = tmp.resolve("frozen" + n++);
            CliRun run = CliRun.of(optimize(dir, out, freeze));
            assertEquals(0, run.code(), String.join(" ", freeze) + ": " + run.err());
            assertTrue(Files.exists(out), "written");
        }
        Path out = tmp.resolve("refused");
        CliRun run = CliRun.of(optimize(dir, out, new String[] {"--freeze-above", "0.5", "--freeze-kv", "paper",
                "--freeze-logits", "all"}));
        assertEquals(2, run.code(), run.err());
        assertEquals(1, run.err().strip().lines().count(), run.err());
        assertTrue(run.err().startsWith("attnskip: freeze") && run.err().contains("GroupQueryAttention"), run.err());
        assertFalse(Files.exists(out), "nothing written");
    }

    private static String[] optimize(Path dir, Path out, String[] freeze) {
        String[] args = new String[4 + freeze.length];
        System.arraycopy(new String[] {"optimize", dir.toString(), "-o", out.toString()}, 0, args, 0, 4);
        System.arraycopy(freeze, 0, args, 4, freeze.length);
        return args;
    }

    @Test
    void badFlavourOrShapeExitsTwoWithOneLine() {
        CliRun flavour = CliRun.of("export", "--synthetic", "layers=1,hidden=64,heads=4,ffn=96,vocab=97", "-o",
                tmp.resolve("a").toString(), "--graph", "faster");
        assertEquals(2, flavour.code(), flavour.err());
        assertTrue(flavour.err().contains("unknown graph flavour 'faster'"), flavour.err());

        // head size 12: GroupQueryAttention takes multiples of 8 only
        CliRun shape = CliRun.of("export", "--synthetic", "layers=1,hidden=36,heads=3,ffn=96,vocab=97", "-o",
                tmp.resolve("b").toString(), "--graph", "fused");
        assertEquals(2, shape.code(), shape.err());
        assertEquals(1, shape.err().strip().lines().count(), shape.err());
        assertFalse(ModelDirectory.isModelDirectory(tmp.resolve("b")));
    }
}
