package org.attnskip.rewrite;

import ai.onnx.proto.OnnxMl.TensorProto;
import org.attnskip.layout.DecoderLayout;
import org.attnskip.layout.LayerLayout;
import org.attnskip.onnx.BadInputException;
import org.attnskip.onnx.Graph;
import org.attnskip.onnx.Tensors;
import org.attnskip.reference.AffineMap;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Calibrated drop: as {@link DropAttentionPass} (attention, K/V projections and the layer's KV
 * inputs and outputs go), but the residual add of each selected layer receives a fitted per-token
 * map of the layer's own attention norm output instead of nothing:
 * norm output -> MatMul (-> MatMul for a low-rank map) -> Add bias -> the layer's residual add.
 * For a fused Skip*Norm the norm output is its normalised output and the map takes the attention
 * branch's input slot, so the fused add stays.
 */
public final class CompensatedDropPass implements RewritePass {
    private final Map<Integer, AffineMap> maps;
    private final int contextLength;

    /** @param maps the fitted map of each layer the selection drops */
    public CompensatedDropPass(Map<Integer, AffineMap> maps, int contextLength) {
        this.maps = maps;
        this.contextLength = contextLength;
    }

    @Override
    public ChangeReport apply(Graph g, DecoderLayout layout, LayerSelection selection) {
        if (!maps.keySet().equals(selection.layers())) {
            throw new IllegalArgumentException("maps for layers " + new java.util.TreeSet<>(maps.keySet())
                    + " but layers " + selection.layers() + " selected");
        }
        Map<Integer, String> substitutes = new HashMap<>();
        int nodesAdded = 0;
        long paramsAdded = 0;
        for (int i : selection.layers()) {
            LayerLayout layer = layout.layer(i);
            AffineMap map = maps.get(i);
            if (layout.hiddenSize() > 0 && map.dim() != layout.hiddenSize()) {
                throw new BadInputException("layer " + i + ": the map is for hidden size " + map.dim() + ", the model's is "
                        + layout.hiddenSize());
            }
            String normOutput = layer.attention().normOutput();
            if (normOutput == null || normOutput.isEmpty()) {
                throw new BadInputException("layer " + i + ": the attention norm's output is not a value of the graph");
            }
            int type = elementType(g, layout, normOutput);
            NodeEmitter emit = new NodeEmitter(g, "/attnskip/compensate/layer" + i);
            String h = emit.op("MatMul", normOutput, weight(g, i, "first", map.first(), map.dim(), map.rank(), type));
            nodesAdded++;
            if (map.lowRank()) {
                h = emit.op("MatMul", h, weight(g, i, "second", map.second(), map.rank(), map.dim(), type));
                nodesAdded++;
            }
            substitutes.put(i, emit.op("Add", h, weight(g, i, "bias", map.bias(), 0, map.dim(), type)));
            nodesAdded++;
            paramsAdded += map.parameters();
        }
        ChangeReport drop = DropAttentionPass.drop(g, layout, selection, contextLength, substitutes);
        List<String> notes = new ArrayList<>(drop.notes());
        AffineMap any = maps.isEmpty() ? null : maps.values().iterator().next();
        notes.add(String.format("compensate linear: %,d parameters added (%s per layer: %s)", paramsAdded,
                any == null ? "none" : String.format("%,d", any.parameters()),
                any == null ? "-" : any.lowRank() ? "rank " + any.rank() + " maps, two MatMuls and a bias"
                        : "a dim x dim MatMul and a bias"));
        // The map costs 2 * parameters FLOPs per token, whatever the context.
        long flops = Math.max(0, drop.attentionFlopsSavedPerToken() - 2 * paramsAdded);
        return new ChangeReport(drop.mode(), drop.threshold(), drop.layers(), drop.firstChangedLayer(), drop.nodesRemoved(),
                drop.nodesAdded() + nodesAdded, drop.paramsRemoved(), drop.contextLength(), flops,
                drop.kvBytesPerTokenBefore(), drop.kvBytesPerTokenAfter(), drop.inputsRemoved(), drop.outputsRemoved(),
                List.copyOf(notes));
    }

    /** Parameters the maps add, bias included. */
    public static long parametersAdded(Map<Integer, AffineMap> maps) {
        return maps.values().stream().mapToLong(AffineMap::parameters).sum();
    }

    private static String weight(Graph g, int layer, String what, float[] values, int rows, int cols, int type) {
        String name = g.freshName("attnskip.compensate." + layer + "." + what);
        long[] dims = rows == 0 ? new long[] {cols} : new long[] {rows, cols};
        g.addInitializer(type == TensorProto.DataType.FLOAT16_VALUE ? Tensors.float16Tensor(name, dims, values)
                : Tensors.floatTensor(name, dims, values));
        return name;
    }

    /** The hidden state's element type: the norm output's declared one, else the logits'. */
    private static int elementType(Graph g, DecoderLayout layout, String value) {
        int declared = g.valueInfo(value).map(v -> v.getType().getTensorType().getElemType()).orElse(0);
        if (declared != 0) {
            return declared;
        }
        return g.valueInfo(layout.logits()).map(v -> v.getType().getTensorType().getElemType())
                .filter(t -> t != 0).orElse(TensorProto.DataType.FLOAT_VALUE);
    }
}
