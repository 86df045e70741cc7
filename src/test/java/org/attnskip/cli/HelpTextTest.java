package org.attnskip.cli;

import org.attnskip.CliRun;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Every subcommand's --help renders cleanly: picocli warns (and prints raw text) on a stray '%'. */
class HelpTextTest {
    @Test
    void everySubcommandsHelpRendersWithoutWarnings() {
        List<String> names = new CommandLine(new Main()).getSubcommands().keySet().stream()
                .filter(n -> !n.equals("help")).toList();
        assertTrue(names.size() >= 10, names.toString());
        for (String name : names) {
            CliRun run = CliRun.of(name, "--help");
            assertEquals(0, run.code(), name);
            assertTrue(run.out().startsWith("Usage: attnskip " + name), name + ": " + run.out());
            String all = run.out() + run.err();
            assertFalse(all.contains("WARN") || all.contains("%n"), name + " --help: " + all);
        }
    }
}
