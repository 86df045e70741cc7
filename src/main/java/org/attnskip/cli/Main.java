package org.attnskip.cli;

import org.attnskip.onnx.BadInputException;
import org.attnskip.onnx.InvalidGraphException;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtProvider;
import org.attnskip.runtime.OrtSessionFactory;
import picocli.AutoComplete;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/** The attnskip command line: one subcommand class per file, registered here. */
@Command(name = "attnskip",
        mixinStandardHelpOptions = true,
        versionProvider = Main.Version.class,
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
                BenchCommand.class,
                AutoComplete.GenerateCompletion.class,
                CommandLine.HelpCommand.class
        })
public final class Main {
    public static final String VERSION = "0.1.0";

    public static void main(String[] args) {
        System.exit(run(args));
    }

    /** attnskip's version and the ONNX Runtime it runs on: the library's version and its execution providers. */
    static final class Version implements CommandLine.IVersionProvider {
        @Override
        public String[] getVersion() {
            var providers = OrtEnvironment.getAvailableProviders();
            String build = providers.contains(OrtProvider.CUDA) ? "GPU build (onnxruntime_gpu)" : "CPU build (onnxruntime)";
            return new String[] {"attnskip " + VERSION,
                    "ONNX Runtime " + OrtSessionFactory.environment().getVersion() + ", " + build + ", execution providers: "
                            + providers.stream().map(OrtProvider::getName).sorted().toList()};
        }
    }

    /** Runs a command line and returns its exit code: 0 success, 2 bad input, 1 internal error. */
    public static int run(String... args) {
        CommandLine cli = new CommandLine(new Main());
        // every subcommand answers --help and --version, whether or not its class asks for them
        cli.getSubcommands().values().forEach(sub -> sub.getCommandSpec().mixinStandardHelpOptions(true)
                .versionProvider(new Version()));
        // picocli hides its completion subcommand; list it so that users find it in the help
        cli.getSubcommands().get("generate-completion").getCommandSpec().usageMessage().hidden(false);
        cli.setExecutionExceptionHandler((ex, commandLine, parseResult) -> {
            if (ex instanceof BadInputException) {
                // one line, whatever the message carries (parsers append a location on a second line)
                commandLine.getErr().println("attnskip: " + String.valueOf(ex.getMessage()).lines().findFirst().orElse(""));
                return 2;
            }
            if (ex instanceof InvalidGraphException) {
                // a rewrite produced a broken graph and wrote nothing: the message names the broken value
                commandLine.getErr().println("attnskip: internal error: " + ex.getMessage());
                return 1;
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
        try {
            return cli.execute(args);
        } catch (OutOfMemoryError e) {
            // Checks before large jobs should prevent this; if one was wrong, one line beats a trace.
            cli.getErr().println("attnskip: out of Java heap (" + Runtime.getRuntime().maxMemory() / (1 << 20)
                    + " MB); raise it with ATTNSKIP_JAVA_OPTS=-Xmx<size>, e.g. -Xmx16g");
            return 2;
        }
    }
}
