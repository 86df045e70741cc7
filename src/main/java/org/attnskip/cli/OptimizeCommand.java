package org.attnskip.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.PropertyNamingStrategies;
import com.fasterxml.jackson.databind.SerializationFeature;
import org.attnskip.layout.DecoderLayout;
import org.attnskip.onnx.BadInputException;
import org.attnskip.reference.Noise;
import org.attnskip.rewrite.ChangeReport;
import org.attnskip.rewrite.FreezeForm;
import org.attnskip.rewrite.FreezeKv;
import org.attnskip.rewrite.LayerSelection;
import org.attnskip.rewrite.Mode;
import org.attnskip.rewrite.Rewrite;
import org.attnskip.rewrite.RewriteRequest;
import org.attnskip.eval.Bootstrap;
import org.attnskip.eval.DropCompensation;
import org.attnskip.eval.ModelSource;
import org.attnskip.eval.TextDocuments;
import org.attnskip.probe.AutoChoice;
import org.attnskip.probe.QualityTolerance;
import org.attnskip.probe.SensitivityExperiment;
import org.attnskip.runtime.Device;
import org.attnskip.runtime.OrtSessionFactory;
import org.attnskip.runtime.Tokenizer;
import org.attnskip.runtime.TokenizerFiles;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;

@Command(name = "optimize",
        description = {"Rewrite a decoder graph so that attention above a layer is skipped.",
                "A threshold f in [0,1] touches layers i >= ceil(f * L); f = 1.0 changes nothing.",
                "Or name k itself: --drop-attn, --freeze or --random-kv with --from-layer K.",
                "The input is never modified; the output appears only when complete."})
public final class OptimizeCommand implements Callable<Integer> {
    @Parameters(index = "0", paramLabel = "MODEL", description = "an .onnx file or a model directory")
    Path model;

    @Option(names = {"-o", "--output"}, required = true, paramLabel = "OUT",
            description = "output .onnx file, or a directory when MODEL is a directory")
    Path output;

    @ArgGroup(exclusive = true, multiplicity = "1")
    Which which;

    static final class Which {
        @Option(names = "--drop-attn-above", paramLabel = "F",
                description = "drop the attention sub-block of layers i >= ceil(F * L)")
        String dropAbove;

        @Option(names = "--drop-attn-layers", paramLabel = "LIST", description = "drop attention in these layers, e.g. 20,21,24")
        String dropLayers;

        @Option(names = "--drop-attn", description = "as --drop-attn-above, from the layer --from-layer names")
        boolean drop;

        @Option(names = "--freeze-above", paramLabel = "F",
                description = "previous tokens' K/V in layers i > k come from their stream at layer k's input")
        String freezeAbove;

        @Option(names = "--freeze", description = "as --freeze-above, from the layer --from-layer names")
        boolean freeze;

        @Option(names = "--random-kv-above", paramLabel = "F",
                description = "analysis: replace previous tokens' hidden vectors at layer k's input with seeded noise")
        String randomAbove;

        @Option(names = "--random-kv", description = "as --random-kv-above, from the layer --from-layer names")
        boolean random;

        Mode mode() {
            return drop || dropAbove != null || dropLayers != null ? Mode.DROP
                    : freeze || freezeAbove != null ? Mode.FREEZE : Mode.RANDOM;
        }

        @Option(names = "--auto", description = {"measure --mode at every k on --text (as probe does) and apply the smallest k",
                "within --tolerance; for drop, a non-contiguous set when it drops more layers"})
        boolean auto;
    }

    @Option(names = "--tolerance", defaultValue = "top1=0.9", paramLabel = "BOUNDS",
            description = "with --auto: top1=A, kl=K and/or ppl=+P%% (default: ${DEFAULT-VALUE})")
    String tolerance;

    @Option(names = "--mode", defaultValue = "drop", paramLabel = "drop|freeze", description = "with --auto (default: ${DEFAULT-VALUE})")
    String autoMode;

    @Option(names = "--text", defaultValue = "eval/stories.txt", paramLabel = "FILE",
            description = "with --auto: documents to measure on, JSONL or plain text (default: ${DEFAULT-VALUE})")
    Path text;

    @Option(names = "--prompts", defaultValue = "32", description = "with --auto: how many documents (default: ${DEFAULT-VALUE})")
    int prompts;

    @Option(names = "--max-tokens", defaultValue = "64", description = "with --auto: tokens per document (default: ${DEFAULT-VALUE})")
    int maxTokens;

    @Option(names = "--tokenizer", paramLabel = "FILE", description = "with --auto or --compensate: tokenizer (default: the model directory's or one next to it)")
    Path tokenizer;

    @Option(names = "--bootstrap", defaultValue = "1000", description = "with --auto: bootstrap resamples (default: ${DEFAULT-VALUE})")
    int bootstrap;

    @Option(names = "--quiet", description = "with --auto or --compensate: no progress output")
    boolean quiet;

    @Option(names = "--freeze-logits", defaultValue = "last", paramLabel = "last|all",
            description = {"with --freeze-above: 'last' (default) runs layers >= k for the last position only in prefill,"
                    + " the deployable form that saves prefill work; 'all' keeps logits for every position"
                    + " (each as if it were the last token), for evaluation"})
    String freezeLogits;

    @Option(names = "--freeze-kv", paramLabel = "paper|single-input",
            description = {"with --freeze-above/--freeze/--auto --mode freeze: 'paper': the last token attends to its own"
                    + " normal K/V while layers >= k cache K/V from layer k's input; 'single-input': every token's K/V in"
                    + " layers >= k, its own included, come from layer k's input, projected by one MatMul, so a decode"
                    + " step costs no more than the original's (default: single-input)"})
    String freezeKv;

    @Option(names = "--noise", defaultValue = "gaussian", paramLabel = "KIND",
            description = "with --random-kv-above: gaussian, angle:DEGREES or shuffle (default: ${DEFAULT-VALUE})")
    String noise;

    // no defaultValue: picocli would apply it after the hidden --seed had set the field
    @Option(names = "--noise-seed", paramLabel = "N",
            description = "with --random-kv-above: the seed recorded in the model for whoever feeds the noise")
    long noiseSeed = 0;

    /** The old spelling of --noise-seed, kept working but no longer shown (probe's seed is another one). */
    @Option(names = "--seed", hidden = true, paramLabel = "N")
    void oldNoiseSeed(long seed) {
        noiseSeed = seed;
    }

    @Option(names = "--from-layer", paramLabel = "K",
            description = "first layer K, instead of a fraction: with --drop-attn, --freeze or --random-kv")
    Integer fromLayer;

    @Option(names = "--context", defaultValue = "" + RewriteRequest.DEFAULT_CONTEXT, paramLabel = "N",
            description = "context length at which attention FLOPs saved are reported (default: ${DEFAULT-VALUE})")
    int context;

    @Option(names = "--json", description = "print the change report as JSON on stdout")
    boolean json;

    @picocli.CommandLine.Mixin
    CompensationOptions compensation;

    @Override
    public Integer call() throws Exception {
        compensation.check(which.dropAbove != null || which.dropLayers != null || which.drop);
        Rewrite rewrite = Rewrite.load(model);
        DecoderLayout layout = rewrite.layout();
        FreezeKv flavour = freezeKv == null ? FreezeKv.DEFAULT : FreezeKv.parse(freezeKv);
        AutoChoice auto = which.auto ? auto(layout.numLayers(), flavour) : null;
        LayerSelection selection = auto != null ? auto.selection() : selection(layout.numLayers());
        Mode mode = auto != null ? auto.mode() : which.mode();
        if (freezeKv != null && mode != Mode.FREEZE) {
            throw new BadInputException("--freeze-kv applies to freeze only (--freeze-above, --freeze, --auto --mode freeze)");
        }
        RewriteRequest request = switch (mode) {
            case FREEZE -> RewriteRequest.freeze(flavour, switch (freezeLogits) {
                case "last" -> FreezeForm.DEPLOYABLE;
                case "all" -> FreezeForm.EVALUATION;
                default -> throw new BadInputException("--freeze-logits " + freezeLogits + ": expected last or all");
            });
            case RANDOM -> RewriteRequest.random(Noise.parse(noise), noiseSeed);
            case DROP -> compensation.enabled() ? compensated(layout, selection) : RewriteRequest.drop(context);
        };
        if (auto != null) {
            request = request.recording(auto.notes(), auto.metadata());
        }
        ChangeReport report = rewrite.write(request, selection, output, Main.VERSION);
        if (json) {
            System.out.println(toJson(report));
        } else {
            print(report);
        }
        return 0;
    }

    /** Calibrated drop: fits the maps of the selected layers on the calibration text. */
    private RewriteRequest compensated(DecoderLayout layout, LayerSelection selection) {
        compensation.checkRank(layout.hiddenSize());
        try (ScratchDir scratch = new ScratchDir("attnskip-calibrate")) {
            ModelSource source = ModelSource.resolve(model, tokenizer, scratch.path());
            DropCompensation.Fitted fitted = compensation.forModel(source, CompensationOptions.tokenizer(source), Device.AUTO,
                    scratch.path(), quiet).fit(source.onnx(), selection);
            return RewriteRequest.compensatedDrop(fitted.maps(), fitted.metadata(), context);
        }
    }

    /** Measures the chosen mode on the text (the baseline is the input model) and returns the recommendation. */
    private AutoChoice auto(int numLayers, FreezeKv flavour) {
        if (fromLayer != null) {
            throw new BadInputException("--from-layer cannot be combined with --auto");
        }
        Mode mode = switch (autoMode.trim().toLowerCase(java.util.Locale.ROOT)) {
            case "drop" -> Mode.DROP;
            case "freeze" -> Mode.FREEZE;
            default -> throw new BadInputException("--mode " + autoMode + ": --auto applies drop or freeze");
        };
        QualityTolerance tol = QualityTolerance.parse(tolerance);
        if (prompts < 1 || maxTokens < 2) {
            throw new BadInputException("--prompts must be at least 1 and --max-tokens at least 2");
        }
        List<String> docs = TextDocuments.read(text);
        docs = docs.subList(0, Math.min(prompts, docs.size()));
        try (ScratchDir scratch = new ScratchDir("attnskip-auto")) {
            ModelSource source = ModelSource.resolve(model, tokenizer, scratch.path());
            if (source.tokenizer() == null) {
                throw new BadInputException("--auto needs the model's tokenizer: pass --tokenizer");
            }
            Tokenizer tok = TokenizerFiles.open(source.tokenizer(), null, EvalCommand.vocabOf(source));
            try (SensitivityExperiment experiment = new SensitivityExperiment(source.onnx(), numLayers, tok, docs, maxTokens,
                    new Bootstrap(Math.max(1, bootstrap), 0), OrtSessionFactory.Settings.of(Device.AUTO), scratch.path(),
                    context, Main.VERSION, quiet)) {
                return AutoChoice.choose(experiment, mode, flavour, tol);
            }
        }
    }

    private LayerSelection selection(int numLayers) {
        if (which.dropLayers != null) {
            if (fromLayer != null) {
                throw new BadInputException("--from-layer cannot be combined with --drop-attn-layers");
            }
            return LayerSelection.fromList(which.dropLayers, numLayers);
        }
        String fraction = which.dropAbove != null ? which.dropAbove
                : which.freezeAbove != null ? which.freezeAbove : which.randomAbove;
        // A fraction and a first layer would each pick k; refuse rather than silently prefer one.
        if (fraction != null && fromLayer != null) {
            throw new BadInputException("--from-layer " + fromLayer + " replaces the fraction " + fraction
                    + ": use --drop-attn, --freeze or --random-kv with --from-layer, or the fraction alone");
        }
        if (fraction != null) {
            return LayerSelection.fromFraction(fraction, numLayers);
        }
        if (fromLayer == null) {
            throw new BadInputException("--drop-attn, --freeze and --random-kv need --from-layer K"
                    + " (or give a fraction: --drop-attn-above F, --freeze-above F, --random-kv-above F)");
        }
        return LayerSelection.fromLayer(fromLayer, numLayers);
    }

    /**
     * The report in snake_case. Attention FLOPs per generated token at a context length apply to
     * drop only (freeze saves prefill work, random saves nothing), so other modes leave both out
     * rather than claim 0.
     */
    static String toJson(ChangeReport r) throws com.fasterxml.jackson.core.JsonProcessingException {
        ObjectMapper mapper = new ObjectMapper().setPropertyNamingStrategy(PropertyNamingStrategies.SNAKE_CASE)
                .enable(SerializationFeature.INDENT_OUTPUT).enable(SerializationFeature.WRITE_ENUMS_USING_TO_STRING);
        com.fasterxml.jackson.databind.node.ObjectNode node = mapper.valueToTree(r);
        if (r.contextLength() == 0) {
            node.remove(List.of("context_length", "attention_flops_saved_per_token"));
        }
        return mapper.writeValueAsString(node);
    }

    private void print(ChangeReport r) {
        System.out.printf("wrote        %s%n", output);
        System.out.printf("mode         %s%s%n", r.mode(), r.threshold() == null ? "" : " above " + r.threshold());
        System.out.printf("layers       %s (first layer that changes: %s)%n", r.layers(),
                r.firstChangedLayer() < 0 ? "none" : r.firstChangedLayer());
        System.out.printf("nodes        -%d +%d%n", r.nodesRemoved(), r.nodesAdded());
        System.out.printf("params       -%,d%n", r.paramsRemoved());
        if (r.contextLength() > 0) {
            System.out.printf("attn FLOPs   -%,d per token at context %d%n", r.attentionFlopsSavedPerToken(), r.contextLength());
        }
        System.out.printf("KV bytes     %,d -> %,d per token%n", r.kvBytesPerTokenBefore(), r.kvBytesPerTokenAfter());
        r.notes().forEach(n -> System.out.println("note         " + n));
    }
}
