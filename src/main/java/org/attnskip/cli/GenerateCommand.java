package org.attnskip.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import org.attnskip.onnx.BadInputException;
import org.attnskip.runtime.DecoderSession;
import org.attnskip.runtime.Device;
import org.attnskip.runtime.Generator;
import org.attnskip.runtime.ModelLocation;
import org.attnskip.runtime.OrtSessionFactory;
import org.attnskip.runtime.Tokenizer;
import org.attnskip.runtime.TokenizerFiles;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.Callable;

@Command(name = "generate", mixinStandardHelpOptions = true,
        description = {"Generate text with a decoder graph and its KV cache, as llama2.c's run does.",
                "The prompt's text, then each new piece, is printed as it comes. Generation stops at EOS, at BOS "
                        + "(which ends a story in llama2.c's models), or after -n positions."})
public final class GenerateCommand implements Callable<Integer> {
    @Parameters(index = "0", paramLabel = "MODEL",
            description = "a model directory written by 'attnskip export', or an .onnx file (then --tokenizer is needed)")
    Path model;

    @Option(names = "--tokenizer", paramLabel = "FILE",
            description = "tokenizer.json or llama2.c's tokenizer.bin (default: the model directory's)")
    Path tokenizer;

    @Option(names = {"-i", "--prompt"}, defaultValue = "", description = "the prompt (default: none, start from BOS)")
    String prompt;

    @Option(names = {"-n", "--steps"}, defaultValue = "256",
            description = "positions to use, prompt included, as llama2.c's -n (default: ${DEFAULT-VALUE}; "
                    + "capped at the model's maximum)")
    int steps;

    @Option(names = {"-t", "--temperature"}, defaultValue = "1.0",
            description = "0 for greedy decoding (default: ${DEFAULT-VALUE})")
    float temperature;

    @Option(names = {"-p", "--top-p"}, defaultValue = "0.9",
            description = "nucleus sampling threshold; 0 or 1 turns it off (default: ${DEFAULT-VALUE})")
    float topP;

    @Option(names = {"-s", "--seed"}, defaultValue = "0", description = "random seed of sampling (default: ${DEFAULT-VALUE})")
    long seed;

    @Option(names = "--device", defaultValue = "auto", paramLabel = "cpu|cuda|auto",
            description = "where to run; auto uses CUDA when it can load, else the CPU, and says so (default: ${DEFAULT-VALUE})")
    String device;

    @Option(names = "--threads", defaultValue = "0",
            description = "ONNX Runtime intra-op threads; 0 chooses: all cores, spinning, while the load average is below the "
                    + "core count, else 1 below 16 MB of weights and all cores above, not spinning (default: ${DEFAULT-VALUE})")
    int threads;

    @Option(names = "--ort-profile", paramLabel = "PREFIX",
            description = "write ONNX Runtime's per-node timing profile (Chrome trace JSON) to PREFIX_<date>.json")
    String ortProfile;

    @Option(names = "--json", description = "print one JSON object (ids, text, stop reason) instead of streaming the text")
    boolean json;

    @Override
    public Integer call() throws Exception {
        if (!(temperature >= 0) || Float.isInfinite(temperature)) {
            throw new BadInputException("--temperature must be 0 or more, got " + temperature);
        }
        if (!(topP >= 0 && topP <= 1)) {
            throw new BadInputException("--top-p must be between 0 and 1, got " + topP);
        }
        if (steps <= 0) {
            throw new BadInputException("-n must be at least 1, got " + steps);
        }
        Device dev = Device.parse(device);
        ModelLocation location = ModelLocation.resolve(model, tokenizer);
        Path modelFile = location.modelFile();
        int vocab = location.vocabSize();
        int maxPositions = location.maxPositions();
        int positions = Math.min(steps, maxPositions);
        if (positions < steps) {
            System.err.println("attnskip: -n " + steps + " exceeds the model's " + maxPositions + " positions; using "
                    + maxPositions);
        }

        PrintStream out = new PrintStream(System.out, true, StandardCharsets.UTF_8);
        if (threads < 0) {
            throw new BadInputException("--threads must be 0 (by model size) or more, got " + threads);
        }
        OrtSessionFactory.Settings settings = OrtSessionFactory.Settings.of(dev).withThreads(threads).withProfile(ortProfile).forShortRun();
        try (DecoderSession session = DecoderSession.open(modelFile, settings)) {
            if (session.opened().fallbackNote() != null) {
                System.err.println("attnskip: " + session.opened().fallbackNote());
            }
            Tokenizer tok = TokenizerFiles.open(location.tokenizerFile(), location.tokenizerKind(), vocab > 0 ? vocab : session.vocabSize());
            try {
                Generator generator = new Generator(session, tok);
                Generator.Options options = new Generator.Options(positions, temperature, topP, seed);
                Generator.Generation g = generator.generate(prompt, options, json ? piece -> { } : GenerateCommand::print);
                if (json) {
                    out.println(new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT)
                            .writeValueAsString(toJson(g, session)));
                } else {
                    out.println();
                    System.err.println(rateLine(g.timing(), session.opened().device().cliName()));
                }
            } finally {
                if (tok instanceof AutoCloseable c) {
                    c.close();
                }
            }
        }
        return 0;
    }

    /**
     * A piece's UTF-8 bytes straight to standard output, flushed (as run.c flushes each token): not
     * through a UTF-8 PrintStream, whose writer and encoder are dozens of calls per piece that run
     * interpreted for most of a short generation in a fresh JVM.
     */
    private static void print(String piece) {
        byte[] bytes = piece.getBytes(StandardCharsets.UTF_8);
        System.out.write(bytes, 0, bytes.length);
        System.out.flush();
    }

    /**
     * Decode tokens per second over the single-token runs only (as llama2.c's run.c, whose timer
     * starts after its first step), then the prefill, which runs the whole prompt at once.
     */
    static String rateLine(Generator.Timing t, String device) {
        String prefill = String.format(java.util.Locale.ROOT, "prefill of %d tokens %.1f ms", t.prefillTokens(), t.prefillNanos() / 1e6);
        if (t.decodeRuns() == 0) {
            return "achieved tok/s: n/a on " + device + " (no decode step; " + prefill + ")";
        }
        String cpu = t.decodeCpuNanos() < 0 ? ""
                : String.format(java.util.Locale.ROOT, ", %.3f s CPU on the calling thread", t.decodeCpuNanos() / 1e9);
        return String.format(java.util.Locale.ROOT, "achieved tok/s: %.1f on %s (decode: %d steps in %.3f s%s; %s)", t.decodeTokensPerSecond(),
                device, t.decodeRuns(), t.decodeNanos() / 1e9, cpu, prefill);
    }

    private static Map<String, Object> toJson(Generator.Generation g, DecoderSession session) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("prompt_ids", g.promptIds());
        m.put("generated_ids", g.generatedIds());
        m.put("stop", g.stop().name().toLowerCase());
        m.put("text", g.text());
        m.put("device", session.opened().device().cliName());
        m.put("decode_steps", g.timing().decodeRuns());
        m.put("decode_seconds", g.timing().decodeNanos() / 1e9);
        m.put("prefill_seconds", g.timing().prefillNanos() / 1e9);
        return m;
    }
}
