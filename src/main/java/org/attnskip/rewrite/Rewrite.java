package org.attnskip.rewrite;

import ai.onnx.proto.OnnxMl.ModelProto;
import org.attnskip.layout.DecoderLayout;
import org.attnskip.layout.LayoutDiscovery;
import org.attnskip.onnx.Graph;
import org.attnskip.onnx.GraphCheck;
import org.attnskip.onnx.LoadedModel;
import org.attnskip.onnx.ModelOutput;
import org.attnskip.onnx.OnnxModelIO;

import java.nio.file.Path;
import java.util.List;
import java.util.function.IntFunction;

/**
 * The one way a model is rewritten: load, discover the layout, run the pass of the request's
 * {@link Mode}, check the result is a well-formed graph, stamp the attnskip.* metadata and save
 * atomically. optimize (with and without --auto), sweep, probe and demo all come through here.
 * Nothing is written when any step fails; the input is never modified.
 */
public final class Rewrite {
    private final Path input;
    private final LoadedModel loaded;
    private final DecoderLayout layout;
    /** The graph {@link #layout} was discovered on, until the first rewrite edits it. */
    private Graph pristine;

    private Rewrite(Path input, LoadedModel loaded, Graph graph, DecoderLayout layout) {
        this.input = input;
        this.loaded = loaded;
        this.pristine = graph;
        this.layout = layout;
    }

    /** Loads a model (an .onnx file or a model directory) and discovers its layout. */
    public static Rewrite load(Path model) {
        LoadedModel loaded = OnnxModelIO.load(model);
        Graph graph = loaded.graph();
        DecoderLayout layout = LayoutDiscovery.discover(graph); // its refusals name what a decoder lacks
        GraphCheck.requireValidInput(loaded.proto().getGraph(), model.toString());
        return new Rewrite(model, loaded, graph, layout);
    }

    /** Rewrites {@code model} with the layers {@code layers} picks for its layer count, into {@code output}. */
    public static ChangeReport file(Path model, RewriteRequest request, IntFunction<LayerSelection> layers, Path output,
                                    String toolVersion) {
        Rewrite r = load(model);
        return r.write(request, layers.apply(r.layout().numLayers()), output, toolVersion);
    }

    /** The original model's layout (layer count, hidden size, KV bytes), to choose the layers by. */
    public DecoderLayout layout() {
        return layout;
    }

    /**
     * Applies the request to the selected layers of a fresh copy of the model and writes it to
     * {@code output}: a file, or a directory when the model is a directory (its other files are
     * carried over). May be called more than once, each time on the original model.
     */
    public ChangeReport write(RewriteRequest request, LayerSelection selection, Path output, String toolVersion) {
        return write(request.pass(), request, selection, output, toolVersion);
    }

    /** As above with the pass given (tests use it to feed a broken pass to the check). */
    ChangeReport write(RewritePass pass, RewriteRequest request, LayerSelection selection, Path output, String toolVersion) {
        Graph g = pristine;
        DecoderLayout l = layout;
        if (g == null) {
            // passes hold the layout's node handles: a second rewrite needs its own graph and layout
            g = loaded.graph();
            l = LayoutDiscovery.discover(g);
        }
        pristine = null;
        ChangeReport report = pass.apply(g, l, selection).withMoreNotes(request.notes());
        if (!loaded.inlinedFunctions().isEmpty()) {
            report = report.withMoreNotes(List.of("ONNX local functions inlined (" + String.join(", ",
                    loaded.inlinedFunctions()) + "): the output is the flat graph"));
        }
        ModelProto rewritten = g.toModel();
        GraphCheck.requireWellFormed(rewritten.getGraph(), loaded.proto().getGraph(), "the " + report.mode() + " rewrite of " + input);
        ModelOutput.write(input, loaded, RewriteMetadata.stamp(rewritten, report, toolVersion, request.modelMetadata()), output);
        return report;
    }
}
