package org.attnskip.cli;

import org.attnskip.eval.Progress;
import org.attnskip.export.ExportBudget;
import org.attnskip.export.ExportDtype;
import org.attnskip.export.GraphFlavour;
import org.attnskip.export.HfCheckpoint;
import org.attnskip.export.HfConfig;
import org.attnskip.export.Llama2cCheckpoint;
import org.attnskip.export.LlamaConfig;
import org.attnskip.export.LlamaWeightSource;
import org.attnskip.export.ModelDirectory;
import org.attnskip.export.ModelManifest;
import org.attnskip.export.SyntheticWeights;
import org.attnskip.onnx.BadInputException;
import org.attnskip.onnx.OnnxModelIO;
import org.attnskip.runtime.Tokenizer;
import org.attnskip.runtime.TokenizerFiles;
import org.attnskip.serve.ChatTemplate;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.stream.Stream;

@Command(name = "export", mixinStandardHelpOptions = true,
        description = {"Export Llama-family weights to an ONNX model directory.",
                "It holds model.onnx (standard opset-17 ops, or ONNX Runtime's contrib ops with --graph fused; optimum's "
                        + "input and output names, a KV cache), "
                        + "attnskip.json describing it, and the tokenizer file. The directory is written whole or not at all."})
public final class ExportCommand implements Callable<Integer> {

    /** Where the weights come from: exactly one of these. */
    static final class Source {
        @Option(names = "--llama2c", paramLabel = "FILE", required = true,
                description = "a llama2.c checkpoint (.bin: legacy v0, v1 fp32 or v2 Q8_0)")
        Path llama2c;

        @Option(names = "--hf", paramLabel = "DIR", required = true,
                description = "a Hugging Face model folder (config.json, *.safetensors) of the Llama, Mistral or Qwen2 family")
        Path hf;

        @Option(names = "--synthetic", paramLabel = "SPEC", required = true,
                description = "random weights of a given shape, e.g. layers=4,hidden=64,heads=4,kv_heads=2,ffn=128,vocab=512"
                        + " (optional seq, theta); reproducible with --seed")
        String synthetic;
    }

    @ArgGroup(exclusive = true, multiplicity = "1")
    Source source;

    @Option(names = "--seed", defaultValue = "0", description = "seed of --synthetic weights (default: ${DEFAULT-VALUE})")
    long seed;

    @Option(names = "--tokenizer", paramLabel = "FILE",
            description = "tokenizer to copy into the directory: llama2.c's tokenizer.bin or a tokenizer.json "
                    + "(default with --hf: DIR/tokenizer.json)")
    Path tokenizer;

    @Option(names = {"-o", "--output"}, paramLabel = "DIR", required = true, description = "the model directory to write")
    Path output;

    @Option(names = "--dtype", defaultValue = "fp32", paramLabel = "fp32|fp16|int4|int8",
            description = "element type of weights, activations, KV cache and logits; int4 and int8 keep fp32"
                    + " activations and write each projection as com.microsoft::MatMulNBits with weights"
                    + " quantized in blocks of 32 (ONNX Runtime's CPU int4 form) (default: ${DEFAULT-VALUE})")
    String dtype;

    @Option(names = "--graph", defaultValue = "unfused", paramLabel = "unfused|fused|static",
            description = "unfused: standard ONNX ops, every step spelled out; fused: ONNX Runtime's contrib ops as its"
                    + " model builder writes them (SkipSimplifiedLayerNormalization, GroupQueryAttention with rotary"
                    + " inside, packed q|k|v), fewer nodes and a KV cache updated in place; static: the standard ONNX"
                    + " opset-24 spelling (RMSNormalization, RotaryEmbedding, Attention) with a static cache, fixed"
                    + " buffers that TensorScatter writes at write_indices (default: ${DEFAULT-VALUE})")
    String graph;

    @Option(names = "--external-data", description = "stream the weights to model.onnx.data one tensor at a time, "
            + "checking first that the disk and the Java heap can take them (automatic above 1.5 GB)")
    boolean externalData;

    @Override
    public Integer call() {
        ExportDtype type = ExportDtype.parse(dtype);
        GraphFlavour flavour = GraphFlavour.parse(graph);
        if (source.hf != null) {
            // An unsupported or broken config.json is the real problem; report it before a missing tokenizer.
            HfConfig.read(source.hf);
        }
        Path tokenizerFile = tokenizerFile();
        ModelDirectory written;
        LlamaConfig config;
        try (LlamaWeightSource weights = openWeights()) {
            config = weights.config();
            ModelManifest.TokenizerRef tokenizerRef = null;
            if (tokenizerFile != null) {
                checkTokenizer(tokenizerFile, config);
                tokenizerRef = ModelManifest.TokenizerRef.forFile(tokenizerFile.getFileName().toString());
            }
            ModelManifest manifest = ModelManifest.of(config, type, tokenizerRef, describeSource(), flavour);
            ExportBudget budget = ExportBudget.of(config, type);
            boolean stream = externalData || budget.dataBytes() > OnnxModelIO.EXTERNAL_TOTAL_THRESHOLD;
            if (stream) {
                budget.checkHeap(Runtime.getRuntime().maxMemory());
            }
            budget.checkDisk(output, tokenizerFile == null ? 0 : fileSize(tokenizerFile));
            if (stream) {
                written = streamed(weights, type, flavour, manifest, tokenizerFile, budget);
            } else {
                written = ModelDirectory.write(output, flavour.export(weights, type, null), manifest, tokenizerFile,
                        false, companions());
            }
        }
        System.out.printf("wrote %s: %d layers, dim %d, %d heads (%d KV), vocab %d, %s, %s graph, %s%n", written.dir(),
                config.layers(), config.dim(), config.heads(), config.kvHeads(), config.vocabSize(), type.cliName(),
                flavour.cliName(), humanBytes(directoryBytes(written.dir())));
        return 0;
    }

    /** A Hugging Face checkpoint's tokenizer_config.json goes along: it holds the chat template that serve renders. */
    private List<Path> companions() {
        if (source.hf == null || !Files.isRegularFile(source.hf.resolve(ChatTemplate.CONFIG_FILE))) {
            return List.of();
        }
        return List.of(source.hf.resolve(ChatTemplate.CONFIG_FILE));
    }

    /** Weights go to model.onnx.data tensor by tensor, read a block of rows at a time. */
    private ModelDirectory streamed(LlamaWeightSource weights, ExportDtype type, GraphFlavour flavour, ModelManifest manifest,
                                    Path tokenizerFile, ExportBudget budget) {
        try (Progress progress = Progress.ofBytes("export", budget.dataBytes(), false)) {
            return ModelDirectory.writeStreamed(output, manifest, tokenizerFile, companions(),
                    (tensor, bytes, fileBytes) -> progress.advance(tensor, bytes),
                    data -> flavour.export(weights, type, data));
        }
    }

    private static long fileSize(Path file) {
        try {
            return Files.size(file);
        } catch (IOException e) {
            throw new BadInputException("cannot read " + file + ": " + e.getMessage(), e);
        }
    }

    private Path tokenizerFile() {
        if (tokenizer != null) {
            if (!Files.isRegularFile(tokenizer)) {
                throw new BadInputException("no such tokenizer file: " + tokenizer);
            }
            return tokenizer;
        }
        if (source.llama2c != null) {
            throw new BadInputException("--llama2c needs --tokenizer FILE (llama2.c's tokenizer.bin, e.g. tok512.bin)");
        }
        if (source.hf != null) {
            Path inFolder = source.hf.resolve("tokenizer.json");
            if (!Files.isRegularFile(inFolder)) {
                throw new BadInputException(source.hf + " has no tokenizer.json; name one with --tokenizer FILE");
            }
            return inFolder;
        }
        return null; // synthetic weights need no tokenizer
    }

    private LlamaWeightSource openWeights() {
        if (source.llama2c != null) {
            return Llama2cCheckpoint.open(source.llama2c);
        }
        if (source.hf != null) {
            return HfCheckpoint.open(source.hf);
        }
        return SyntheticWeights.source(source.synthetic, seed);
    }

    private String describeSource() {
        if (source.llama2c != null) {
            return "llama2c:" + source.llama2c.getFileName();
        }
        if (source.hf != null) {
            return "hf:" + source.hf.toAbsolutePath().normalize().getFileName();
        }
        return "synthetic:" + source.synthetic + ";seed=" + seed;
    }

    /** A tokenizer that cannot serve the model is bad input now, not a crash at generation time. */
    private static void checkTokenizer(Path file, LlamaConfig config) {
        Tokenizer t = TokenizerFiles.open(file, null, config.vocabSize());
        if (t.vocabSize() > config.vocabSize()) {
            throw new BadInputException("tokenizer " + file + " has " + t.vocabSize() + " tokens but the model only "
                    + config.vocabSize());
        }
        if (t instanceof AutoCloseable c) {
            try {
                c.close();
            } catch (Exception ignored) {
                // only native memory of a tokenizer we no longer need
            }
        }
    }

    private static long directoryBytes(Path dir) {
        try (Stream<Path> files = Files.list(dir)) {
            return files.mapToLong(p -> {
                try {
                    return Files.size(p);
                } catch (IOException e) {
                    return 0;
                }
            }).sum();
        } catch (IOException e) {
            return 0;
        }
    }

    static String humanBytes(long bytes) {
        if (bytes < 1024 * 1024) {
            return String.format("%.1f KB", bytes / 1024.0);
        }
        if (bytes < 1024L * 1024 * 1024) {
            return String.format("%.1f MB", bytes / (1024.0 * 1024));
        }
        return String.format("%.2f GB", bytes / (1024.0 * 1024 * 1024));
    }
}
