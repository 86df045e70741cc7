package org.attnskip.cli;

import org.attnskip.onnx.BadInputException;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/** The attnskip command line: one subcommand class per file, registered here. */
@Command(name = "attnskip",
        mixinStandardHelpOptions = true,
        version = "attnskip " + Main.VERSION,
        description = "Rewrites ONNX decoder LLM graphs to skip, freeze or randomise attention above a layer.",
        subcommands = {
                InspectCommand.class,
                OptimizeCommand.class,
                EvalCommand.class,
                SweepCommand.class,
                DemoCommand.class,
                ExportCommand.class,
                GenerateCommand.class,
                ServeCommand.class,
                ExportTritonCommand.class,
                ProbeCommand.class,
                CommandLine.HelpCommand.class
        })
public final class Main {
    public static final String VERSION = "0.1.0";

    public static void main(String[] args) {
        System.exit(run(args));
    }

    /** Runs a command line and returns its exit code: 0 success, 2 bad input, 1 internal error. */
    public static int run(String... args) {
        CommandLine cli = new CommandLine(new Main());
        // every subcommand answers --help and --version, whether or not its class asks for them
        cli.getSubcommands().values().forEach(sub -> sub.getCommandSpec().mixinStandardHelpOptions(true));
        cli.setExecutionExceptionHandler((ex, commandLine, parseResult) -> {
            if (ex instanceof BadInputException) {
                // one line, whatever the message carries (parsers append a location on a second line)
                commandLine.getErr().println("attnskip: " + String.valueOf(ex.getMessage()).lines().findFirst().orElse(""));
                return 2;
            }
            commandLine.getErr().println("attnskip: internal error: " + ex);
            ex.printStackTrace(commandLine.getErr());
            return 1;
        });
        // Usage errors (unknown option, missing argument) are bad input too.
        cli.setParameterExceptionHandler((ex, a) -> {
            ex.getCommandLine().getErr().println("attnskip: " + ex.getMessage());
            return 2;
        });
        return cli.execute(args);
    }
}
