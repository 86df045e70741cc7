package org.attnskip.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.PropertyNamingStrategies;
import com.fasterxml.jackson.databind.SerializationFeature;
import org.attnskip.layout.DecoderLayout;
import org.attnskip.layout.LayoutDiscovery;
import org.attnskip.onnx.BadInputException;
import org.attnskip.onnx.Graph;
import org.attnskip.onnx.LoadedModel;
import org.attnskip.onnx.ModelOutput;
import org.attnskip.onnx.OnnxModelIO;
import org.attnskip.rewrite.ChangeReport;
import org.attnskip.rewrite.DropAttentionPass;
import org.attnskip.rewrite.FreezePass;
import org.attnskip.rewrite.FreezePrefillPass;
import org.attnskip.rewrite.RandomNoisePass;
import org.attnskip.rewrite.LayerSelection;
import org.attnskip.rewrite.RewriteMetadata;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.Callable;

@Command(name = "optimize",
        description = {"Rewrite a decoder graph so that attention above a layer is skipped.",
                "A threshold f in [0,1] touches layers i >= ceil(f * L); f = 1.0 changes nothing.",
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

        @Option(names = "--freeze-above", paramLabel = "F",
                description = "previous tokens' K/V in layers i > k come from their stream at layer k's input")
        String freezeAbove;

        @Option(names = "--random-kv-above", paramLabel = "F",
                description = "analysis: replace previous tokens' hidden vectors at layer k's input with seeded noise")
        String randomAbove;
    }

    @Option(names = "--freeze-logits", defaultValue = "last", paramLabel = "last|all",
            description = {"with --freeze-above: 'last' (default) runs layers >= k for the last position only in prefill,"
                    + " the deployable form that saves prefill work; 'all' keeps logits for every position"
                    + " (each as if it were the last token), for evaluation"})
    String freezeLogits;

    @Option(names = "--noise", defaultValue = "gaussian", paramLabel = "KIND",
            description = "with --random-kv-above: gaussian, angle:DEGREES or shuffle (default: ${DEFAULT-VALUE})")
    String noise;

    @Option(names = "--seed", defaultValue = "0", paramLabel = "N",
            description = "with --random-kv-above: the seed recorded in the model for whoever feeds the noise")
    long seed;

    @Option(names = "--from-layer", paramLabel = "K", description = "use first layer K instead of a fraction")
    Integer fromLayer;

    @Option(names = "--context", defaultValue = "1024", paramLabel = "N",
            description = "context length at which attention FLOPs saved are reported (default: ${DEFAULT-VALUE})")
    int context;

    @Option(names = "--json", description = "print the change report as JSON on stdout")
    boolean json;

    @Override
    public Integer call() throws Exception {
        LoadedModel loaded = OnnxModelIO.load(model);
        Graph graph = loaded.graph();
        DecoderLayout layout = LayoutDiscovery.discover(graph);
        LayerSelection selection = selection(layout.numLayers());
        ChangeReport report;
        Map<String, String> extra = new LinkedHashMap<>();
        if (which.freezeAbove != null) {
            report = switch (freezeLogits) {
                case "last" -> FreezePrefillPass.apply(graph, layout, selection);
                case "all" -> FreezePass.apply(graph, layout, selection);
                default -> throw new BadInputException("--freeze-logits " + freezeLogits + ": expected last or all");
            };
        } else if (which.randomAbove != null) {
            RandomNoisePass.NoiseSpec spec = RandomNoisePass.NoiseSpec.parse(noise);
            report = RandomNoisePass.apply(graph, layout, selection, spec);
            extra.put("noise", spec.toString());
            extra.put("seed", Long.toString(seed));
        } else {
            report = DropAttentionPass.apply(graph, layout, selection, context);
        }
        ModelOutput.write(model, loaded, RewriteMetadata.stamp(graph.toModel(), report, Main.VERSION, extra), output);
        if (json) {
            System.out.println(new ObjectMapper().setPropertyNamingStrategy(PropertyNamingStrategies.SNAKE_CASE)
                    .enable(SerializationFeature.INDENT_OUTPUT).writeValueAsString(report));
        } else {
            print(report);
        }
        return 0;
    }

    private LayerSelection selection(int numLayers) {
        if (which.dropLayers != null) {
            if (fromLayer != null) {
                throw new BadInputException("--from-layer cannot be combined with --drop-attn-layers");
            }
            return LayerSelection.fromList(which.dropLayers, numLayers);
        }
        if (fromLayer != null) {
            return LayerSelection.fromLayer(fromLayer, numLayers);
        }
        String fraction = which.dropAbove != null ? which.dropAbove
                : which.freezeAbove != null ? which.freezeAbove : which.randomAbove;
        return LayerSelection.fromFraction(fraction, numLayers);
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
