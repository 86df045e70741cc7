package org.attnskip.cli;

import ai.onnx.proto.OnnxMl.NodeProto;
import ai.onnx.proto.OnnxMl.ValueInfoProto;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import org.attnskip.layout.DecoderLayout;
import org.attnskip.layout.LayerLayout;
import org.attnskip.layout.LayoutDiscovery;
import org.attnskip.onnx.Graph;
import org.attnskip.onnx.LoadedModel;
import org.attnskip.onnx.OnnxModelIO;
import org.attnskip.rewrite.RewriteMetadata;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;

@Command(name = "inspect",
        description = {"Describe a decoder graph: its layers, attention kind, KV cache names and sizes.",
                "Exits 2, with one line saying what was not found, when the graph is not a recognisable decoder."})
public final class InspectCommand implements Callable<Integer> {
    @Parameters(index = "0", paramLabel = "MODEL", description = "an .onnx file or a model directory")
    Path model;

    @Option(names = "--json", description = "print one JSON object on stdout instead of a table")
    boolean json;

    @Override
    public Integer call() throws Exception {
        LoadedModel loaded = OnnxModelIO.load(model);
        Graph graph = loaded.graph();
        DecoderLayout layout = LayoutDiscovery.discover(graph);
        if (json) {
            ObjectMapper mapper = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
            System.out.println(mapper.writeValueAsString(toJson(loaded, graph, layout)));
        } else {
            printTable(loaded, graph, layout);
        }
        return 0;
    }

    static Map<String, Object> toJson(LoadedModel loaded, Graph graph, DecoderLayout layout) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("file", loaded.file().toString());
        m.put("dialect", layout.dialect());
        m.put("layers", layout.numLayers());
        m.put("hidden_size", layout.hiddenSize());
        m.put("num_heads", layout.numHeads());
        m.put("num_kv_heads", layout.numKvHeads());
        m.put("head_dim", layout.headDim());
        m.put("vocab_size", layout.vocabSize());
        m.put("inputs", graph.runtimeInputs().stream().map(ValueInfoProto::getName).toList());
        m.put("outputs", graph.outputs().stream().map(ValueInfoProto::getName).toList());
        m.put("inlined_functions", loaded.inlinedFunctions());
        Map<String, Object> roles = new LinkedHashMap<>();
        roles.put("input_ids", layout.inputIds());
        roles.put("attention_mask", layout.attentionMask());
        roles.put("position_ids", layout.positionIds());
        roles.put(layout.hasLmHead() ? "logits" : "last_hidden_state", layout.logits());
        if (layout.logitsToKeep() != null) {
            roles.put("logits_to_keep", layout.logitsToKeep());
        }
        m.put("roles", roles);
        List<Map<String, Object>> kv = new ArrayList<>();
        List<Map<String, Object>> attention = new ArrayList<>();
        for (LayerLayout l : layout.layers()) {
            Map<String, Object> k = new LinkedHashMap<>();
            k.put("layer", l.index());
            k.put("inputs", l.kv().inputs());
            k.put("outputs", l.kv().outputs());
            k.put("layout", l.kv().layout().name().toLowerCase());
            k.put("axes", l.kv().axes());
            k.put("cache_kind", l.cacheKind().label);
            kv.add(k);
            Map<String, Object> a = new LinkedHashMap<>();
            a.put("layer", l.index());
            a.put("kind", l.attention().kind().label);
            a.put("residual_in", l.residualIn());
            a.put("norm", describe(l.attention().norm()));
            a.put("core", describe(l.attention().core()));
            a.put("residual_add", describe(l.attention().residualAdd()));
            a.put("nodes", l.attention().nodes().stream().map(InspectCommand::describe).toList());
            a.put("mlp_residual_add", describe(l.mlp().residualAdd()));
            a.put("projection_kind", l.attention().projection().label);
            attention.add(a);
        }
        m.put("kv", kv);
        m.put("attention", attention);
        m.put("params", layout.params());
        m.put("rewrite", RewriteMetadata.read(loaded.proto()));
        m.put("kv_bytes_per_token", layout.kvBytesPerToken());
        // Layer 0 speaks for the graph: exporters spell every layer alike. Null when no layer attends.
        m.put("cache_kind", layout.layers().isEmpty() ? null : layout.layer(0).cacheKind().label);
        m.put("projection_kind", layout.layers().isEmpty() ? null : layout.layer(0).attention().projection().label);
        return m;
    }

    /** Node names are often empty in real exports; fall back to the op and its first output. */
    static String describe(NodeProto n) {
        if (n == null) {
            return null;
        }
        return n.getName().isEmpty() ? n.getOpType() + "->" + n.getOutput(0) : n.getName();
    }

    private static void printTable(LoadedModel loaded, Graph graph, DecoderLayout layout) {
        System.out.printf("model       %s%n", loaded.file());
        System.out.printf("dialect     %s%n", layout.dialect());
        System.out.printf("layers      %d%n", layout.numLayers());
        System.out.printf("hidden      %d   heads %d   kv heads %d   head dim %d   vocab %d%n",
                layout.hiddenSize(), layout.numHeads(), layout.numKvHeads(), layout.headDim(), layout.vocabSize());
        System.out.printf("inputs      ids=%s mask=%s positions=%s%n", layout.inputIds(), layout.attentionMask(), layout.positionIds());
        System.out.printf("%-11s %s%s%n", layout.hasLmHead() ? "logits" : "last state", layout.logits(),
                layout.logitsToKeep() == null ? "" : " (of the last n positions, n = input " + layout.logitsToKeep() + "; 0: all)");
        System.out.printf("params      %,d%n", layout.params());
        if (!loaded.inlinedFunctions().isEmpty()) {
            System.out.printf("functions   inlined %s (ONNX local functions: discovery reads the flat graph)%n",
                    String.join(", ", loaded.inlinedFunctions()));
        }
        Map<String, String> rewrite = RewriteMetadata.read(loaded.proto());
        if (!rewrite.isEmpty()) {
            // After a drop, discovery sees only the layers that still attend; say what was done.
            System.out.printf("rewrite     %s%s, layers %s (attnskip %s)%n", rewrite.get("mode"),
                    rewrite.getOrDefault("threshold", "").isEmpty() ? "" : " above " + rewrite.get("threshold"),
                    rewrite.get("layers"), rewrite.get("version"));
        }
        if (!layout.layers().isEmpty()) {
            System.out.printf("storage     %s KV cache, %s projections%n", layout.layer(0).cacheKind().label,
                    layout.layer(0).attention().projection().label);
        }
        System.out.printf("KV bytes    %,d per token%n%n", layout.kvBytesPerToken());
        System.out.printf("%-5s %-34s %-6s %-9s %s%n", "layer", "attention", "nodes", "kv layout", "kv inputs -> outputs");
        for (LayerLayout l : layout.layers()) {
            System.out.printf("%-5d %-34s %-6d %-9s %s -> %s%n", l.index(), l.attention().kind().label,
                    l.attention().nodes().size(), l.kv().layout().name().toLowerCase(),
                    String.join(",", l.kv().inputs()), String.join(",", l.kv().outputs()));
        }
    }
}
