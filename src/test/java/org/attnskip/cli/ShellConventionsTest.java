package org.attnskip.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.attnskip.CliRun;
import org.attnskip.eval.ShippedDemoModel;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** What a shell user expects: --version, a completion script, --json for machines, plain lines off a terminal, exit codes. */
class ShellConventionsTest {
    @TempDir
    Path tmp;

    @Test
    void versionNamesAttnskipAndTheOnnxRuntimeBuild() {
        for (String[] args : new String[][] {{"--version"}, {"demo", "--version"}}) {
            CliRun run = CliRun.of(args);
            assertEquals(0, run.code(), run.err());
            String[] lines = run.out().split("\n");
            assertEquals("attnskip " + Main.VERSION, lines[0]);
            // the pom's onnxruntime 1.29.0, its CPU artifact (the tests never build -Pgpu)
            assertTrue(lines[1].startsWith("ONNX Runtime 1.29.0, CPU build (onnxruntime), execution providers: ["), lines[1]);
            assertTrue(lines[1].contains("CPUExecutionProvider"), lines[1]);
        }
    }

    @Test
    void completionScriptCoversTheSubcommandsAndTheirOptions() {
        CliRun run = CliRun.of("generate-completion");
        assertEquals(0, run.code(), run.err());
        String script = run.out();
        assertTrue(script.startsWith("#!/usr/bin/env bash"), script.substring(0, 80));
        assertTrue(script.contains("complete -F _complete_attnskip"), "no bash complete line");
        for (String word : new String[] {"demo", "sweep", "optimize", "--drop-attn-above", "--freeze-above", "--json"}) {
            assertTrue(script.contains(word), word);
        }
    }

    @Test
    void jsonOnStdoutAndPlainProgressLinesOnStderrOffATerminal() throws Exception {
        Path model = ShippedDemoModel.extractTo(tmp.resolve("model"));
        Path out = tmp.resolve("eval");
        CliRun run = CliRun.of("eval", "--baseline", model.toString(), "--variant", model.toString(), "--text", "eval/stories.txt",
                "--max-docs", "2", "--no-latency", "--bootstrap", "50", "--device", "cpu", "--report", out.toString(), "--json");
        assertEquals(0, run.code(), run.err());
        JsonNode printed = new ObjectMapper().readTree(run.out());
        assertEquals(new ObjectMapper().readTree(out.resolve("report.json").toFile()), printed);
        assertEquals(1.0, printed.at("/text/top1_agreement/value").asDouble(), 0);
        // tests run without a console: a line per step, no bar redrawn with \r, no escape codes
        assertTrue(run.err().contains("text : 0/2\n") && run.err().contains("text : 2/2\n"), run.err());
        assertFalse(run.err().contains("\r") || run.err().contains("\u001b"), run.err());
    }

    @Test
    void sweepAcceptsJsonToo() throws Exception {
        Path model = ShippedDemoModel.extractTo(tmp.resolve("model"));
        CliRun run = CliRun.of("sweep", model.toString(), "--thresholds", "1.0", "--text", "eval/stories.txt", "--max-docs", "1",
                "--no-latency", "--bootstrap", "10", "--device", "cpu", "--quiet", "--report", tmp.resolve("sweep").toString(), "--json");
        assertEquals(0, run.code(), run.err());
        JsonNode printed = new ObjectMapper().readTree(run.out());
        assertEquals(1.0, printed.at("/points/0/threshold").asDouble(), 0);
        assertEquals(0, printed.at("/points/0/layers").size());
    }

    @Test
    void progressBarsOnlyOnATerminalThatDidNotAskForPlainOutput() {
        assertTrue(org.attnskip.eval.Progress.interactive(java.util.Map.of("TERM", "xterm"), true));
        assertFalse(org.attnskip.eval.Progress.interactive(java.util.Map.of("TERM", "xterm"), false));
        assertFalse(org.attnskip.eval.Progress.interactive(java.util.Map.of("NO_COLOR", "1"), true));
        assertFalse(org.attnskip.eval.Progress.interactive(java.util.Map.of("TERM", "dumb"), true));
        assertFalse(org.attnskip.eval.Progress.interactive(java.util.Map.of("CI", "true"), true));
        // NO_COLOR set but empty does not count (no-color.org)
        assertTrue(org.attnskip.eval.Progress.interactive(java.util.Map.of("NO_COLOR", ""), true));
    }

    @Test
    void badInputExitsTwoWithOneLineAndWritesNothing() {
        Path out = tmp.resolve("never");
        CliRun run = CliRun.of("demo", "--thresholds", "0,2", "--report", out.toString());
        assertEquals(2, run.code());
        assertEquals("attnskip: threshold 2 is outside [0, 1]\n", run.err());
        assertFalse(Files.exists(out));
        CliRun two = CliRun.of("demo", "--drop-attn-above", "0.5,0.6", "--report", out.toString());
        assertEquals(2, two.code());
        assertEquals("attnskip: --drop-attn-above takes one threshold, not 0.5,0.6\n", two.err());
        assertFalse(Files.exists(out));
        CliRun unknown = CliRun.of("no-such-command");
        assertEquals(2, unknown.code());
        assertEquals(1, unknown.err().lines().count(), unknown.err());
    }
}
