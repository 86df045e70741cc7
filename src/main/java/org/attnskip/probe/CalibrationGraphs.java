package org.attnskip.probe;

import ai.onnx.proto.OnnxMl.ModelProto;
import ai.onnx.proto.OnnxMl.TensorProto;
import ai.onnx.proto.OnnxMl.TensorShapeProto;
import ai.onnx.proto.OnnxMl.TypeProto;
import ai.onnx.proto.OnnxMl.ValueInfoProto;
import org.attnskip.layout.DecoderLayout;
import org.attnskip.layout.LayerLayout;
import org.attnskip.layout.LayoutDiscovery;
import org.attnskip.onnx.ExternalData;
import org.attnskip.onnx.Graph;
import org.attnskip.onnx.LoadedModel;
import org.attnskip.onnx.OnnxModelIO;
import org.attnskip.reference.AffineMap;
import org.attnskip.rewrite.CompensatedDropPass;
import org.attnskip.rewrite.ExposeResidualStreamPass;
import org.attnskip.rewrite.LayerSelection;
import org.attnskip.runtime.DecoderIo;

import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * The scratch graphs of a layer-by-layer calibration ({@link LayerwiseCalibration}):
 * <ul>
 *   <li>the whole original model with some layers' taps exposed (the stream entering the layer, its
 *       attention norm output and its attention branch), run once over the text;</li>
 *   <li>a segment: the model cut at the stream entering layer {@code from}, which becomes an input
 *       ({@link #STREAM_INPUT}), with that layer's attention replaced by its fitted map, through
 *       the taps of layer {@code to}; the layers below {@code from} are gone, so a run costs
 *       {@code to - from} layers, not the model.</li>
 * </ul>
 * Both reference the baseline's weights: its external data files are hard-linked into the scratch
 * folder (a link inside the folder, as ONNX Runtime and {@code ConfinedPath} require), so no weight
 * is written; where a link cannot be made (another file system) the graph is saved with a copy.
 */
final class CalibrationGraphs {
    static final String STREAM_INPUT = "attnskip.calibration.stream_in";

    private final Path baseline;
    private final Path dir;

    /** @param dir an empty scratch folder of this calibration's own */
    CalibrationGraphs(Path baseline, Path dir) {
        this.baseline = baseline;
        this.dir = dir;
    }

    static String streamTap(int layer) {
        return LinearCalibration.STREAM_TAP + "." + layer;
    }

    static String normTap(int layer) {
        return LinearCalibration.NORM_TAP + "." + layer;
    }

    static String branchTap(int layer) {
        return LinearCalibration.BRANCH_TAP + "." + layer;
    }

    /**
     * Whether every map of the selection can be fitted on segments: each selected layer's arriving
     * stream is a value of an fp32 graph with caches that grow by concatenation, and cutting there
     * leaves nothing of the layers below.
     */
    static boolean applies(Path baseline, LayerSelection selection) {
        LoadedModel loaded = OnnxModelIO.load(baseline);
        Graph g = loaded.graph();
        DecoderLayout layout = LayoutDiscovery.discover(g);
        int type = g.valueInfo(layout.logits()).map(v -> v.getType().getTensorType().getElemType()).orElse(0);
        if (type != TensorProto.DataType.FLOAT_VALUE || layout.hiddenSize() <= 0) {
            return false;
        }
        for (int layer : selection.layers()) {
            LayerLayout l = layout.layer(layer);
            if (empty(l.residualIn()) || empty(l.attention().normOutput()) || empty(l.attention().branchOutput())) {
                return false;
            }
        }
        DecoderIo io = DecoderIo.discover(baseline);
        if (io.staticCache() != null || io.caches().stream().anyMatch(DecoderIo.CachePair::inPlace)) {
            return false;
        }
        List<Integer> layers = new ArrayList<>(selection.layers());
        for (int i = 1; i < layers.size(); i++) {
            AffineMap zero = new AffineMap(layout.hiddenSize(), new float[layout.hiddenSize() * layout.hiddenSize()], null,
                    new float[layout.hiddenSize()]);
            if (segmentGraph(OnnxModelIO.load(baseline), layers.get(i - 1), zero, layers.get(i)) == null) {
                return false;
            }
        }
        return true;
    }

    /** The original model exposing, for each layer given, its arriving stream, norm output and branch. */
    Path original(Set<Integer> layers) {
        LoadedModel loaded = OnnxModelIO.load(baseline);
        Graph g = loaded.graph();
        DecoderLayout layout = LayoutDiscovery.discover(g);
        for (int layer : layers) {
            expose(g, layout, layer);
        }
        return write(loaded, g.toModel(), "calibrate-original");
    }

    /** The segment from the stream entering {@code from} (its attention replaced by {@code map}) to the taps of {@code to}. */
    Path segment(int from, AffineMap map, int to) {
        LoadedModel loaded = OnnxModelIO.load(baseline);
        Graph g = segmentGraph(loaded, from, map, to);
        if (g == null) {
            throw new IllegalStateException("layer " + from + "'s stream does not cut the graph");
        }
        return write(loaded, g.toModel(), "calibrate-segment" + from + "-" + to);
    }

    /** The segment graph, or null where cutting at the stream still leaves nodes of the layers below. */
    private static Graph segmentGraph(LoadedModel loaded, int from, AffineMap map, int to) {
        Graph g = loaded.graph();
        DecoderLayout layout = LayoutDiscovery.discover(g);
        Set<String> taps = expose(g, layout, to);
        new CompensatedDropPass(Map.of(from, map), 0).apply(g, layout, new LayerSelection(null, -1,
                new TreeSet<>(Set.of(from))));
        String cut = layout.layer(from).residualIn();
        g.replaceUses(cut, STREAM_INPUT);
        g.addInput(streamInput(layout.hiddenSize()));
        for (ValueInfoProto out : List.copyOf(g.outputs())) {
            if (!taps.contains(out.getName())) {
                g.removeOutput(out.getName());
            }
        }
        g.cleanup();
        // what is left of the layers below must be shared work (positions, masks), not their stream
        Set<String> below = new HashSet<>();
        below.add(cut);
        for (int l = 0; l < from; l++) {
            LayerLayout layer = layout.layer(l);
            below.add(layer.residualIn());
            below.add(layer.attention().residualSum());
            below.add(layer.mlp().residualSum());
        }
        for (String value : below) {
            if (!empty(value) && g.producer(value) != null) {
                return null;
            }
        }
        return g;
    }

    private static Set<String> expose(Graph g, DecoderLayout layout, int layer) {
        LayerLayout l = layout.layer(layer);
        ExposeResidualStreamPass.exposeValue(g, layout, l.residualIn(), streamTap(layer));
        ExposeResidualStreamPass.exposeValue(g, layout, l.attention().normOutput(), normTap(layer));
        ExposeResidualStreamPass.exposeValue(g, layout, l.attention().branchOutput(), branchTap(layer));
        return Set.of(streamTap(layer), normTap(layer), branchTap(layer));
    }

    private static ValueInfoProto streamInput(int hidden) {
        TensorShapeProto.Builder shape = TensorShapeProto.newBuilder()
                .addDim(TensorShapeProto.Dimension.newBuilder().setDimValue(1))
                .addDim(TensorShapeProto.Dimension.newBuilder().setDimParam("sequence_length"))
                .addDim(TensorShapeProto.Dimension.newBuilder().setDimValue(hidden));
        return ValueInfoProto.newBuilder().setName(STREAM_INPUT).setType(TypeProto.newBuilder()
                .setTensorType(TypeProto.Tensor.newBuilder().setElemType(TensorProto.DataType.FLOAT_VALUE)
                        .setShape(shape))).build();
    }

    /** Writes the graph into the scratch folder with the baseline's external data files linked beside it. */
    private Path write(LoadedModel source, ModelProto proto, String name) {
        Path target = dir.resolve(name + ".onnx");
        try {
            for (TensorProto t : proto.getGraph().getInitializerList()) {
                if (ExternalData.isExternal(t)) {
                    link(ExternalData.of(t).file(source.baseDir(), t.getName()), ExternalData.of(t).location());
                }
            }
            try (OutputStream os = new BufferedOutputStream(Files.newOutputStream(target), 1 << 20)) {
                proto.writeTo(os);
            }
        } catch (IOException | UnsupportedOperationException e) {
            // no hard link here (another file system): a graph with its own copy of the weights
            OnnxModelIO.save(proto, source.baseDir(), target, false);
        }
        return target;
    }

    private void link(Path data, String location) throws IOException {
        Path link = dir.resolve(location);
        if (Files.exists(link)) {
            return;
        }
        Files.createDirectories(link.getParent());
        Files.createLink(link, data);
    }

    private static boolean empty(String value) {
        return value == null || value.isEmpty();
    }
}
