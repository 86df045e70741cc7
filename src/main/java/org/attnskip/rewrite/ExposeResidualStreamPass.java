package org.attnskip.rewrite;

import ai.onnx.proto.OnnxMl.TensorProto;
import org.attnskip.layout.DecoderLayout;
import org.attnskip.layout.LayerLayout;
import org.attnskip.onnx.BadInputException;
import org.attnskip.onnx.Graph;

import java.util.ArrayList;
import java.util.List;

/**
 * For analysis: adds the residual stream as extra graph outputs [batch, seq, hidden], each through
 * an Identity so that no existing value is renamed and the logits are computed exactly as before.
 * <ul>
 *   <li>{@code attnskip.hidden.{i}} for i < L: the stream entering layer i; i = L: the last layer's
 *       output before the final norm (missing when a fused final norm hides it);</li>
 *   <li>{@code attnskip.attn_out.{i}}: the stream after layer i's attention residual add (missing
 *       where a fused norm hides it).</li>
 * </ul>
 */
public final class ExposeResidualStreamPass {
    public static final String HIDDEN_PREFIX = "attnskip.hidden.";
    public static final String ATTENTION_OUT_PREFIX = "attnskip.attn_out.";

    /**
     * The output names added, by layer; an entry is null where the value could not be exposed.
     *
     * @param hidden       L + 1 entries: the input of every layer, then the last layer's output
     * @param attentionOut L entries
     */
    public record Exposed(List<String> hidden, List<String> attentionOut, List<String> notes) {
    }

    private ExposeResidualStreamPass() {
    }

    public static String hiddenName(int i) {
        return HIDDEN_PREFIX + i;
    }

    public static String attentionOutName(int i) {
        return ATTENTION_OUT_PREFIX + i;
    }

    public static Exposed apply(Graph g, DecoderLayout layout) {
        int elemType = g.valueInfo(layout.logits()).map(v -> v.getType().getTensorType().getElemType())
                .filter(t -> t != 0).orElse(TensorProto.DataType.FLOAT_VALUE);
        List<String> hidden = new ArrayList<>();
        List<String> attentionOut = new ArrayList<>();
        List<String> notes = new ArrayList<>();
        int layers = layout.numLayers();
        for (int i = 0; i <= layers; i++) {
            String value = i < layers ? layout.layer(i).residualIn() : layout.layer(layers - 1).mlp().residualSum();
            hidden.add(expose(g, value, hiddenName(i), elemType, layout.hiddenSize(), notes));
        }
        for (LayerLayout layer : layout.layers()) {
            attentionOut.add(expose(g, layer.attention().residualSum(), attentionOutName(layer.index()), elemType,
                    layout.hiddenSize(), notes));
        }
        return new Exposed(hidden, attentionOut, notes);
    }

    /**
     * Adds one value of the graph as an output [batch, seq, hidden] under a new name (such as the
     * calibration taps: a layer's attention norm output and its attention branch).
     */
    public static void exposeValue(Graph g, DecoderLayout layout, String value, String name) {
        int elemType = g.valueInfo(layout.logits()).map(v -> v.getType().getTensorType().getElemType())
                .filter(t -> t != 0).orElse(TensorProto.DataType.FLOAT_VALUE);
        if (expose(g, value, name, elemType, layout.hiddenSize(), new ArrayList<>()) == null) {
            throw new BadInputException(name + ": the graph has no such value to expose");
        }
    }

    private static String expose(Graph g, String value, String name, int elemType, int hiddenSize, List<String> notes) {
        if (value == null || value.isEmpty()) {
            notes.add(name + " not exposed: a fused op does not output that residual stream");
            return null;
        }
        if (g.isGraphOutput(name) || g.producer(name) != null) {
            throw new BadInputException("the model already has a value named '" + name + "' (was the stream exposed before?)");
        }
        new NodeEmitter(g, "attnskip_expose_" + name).identity(value, name);
        g.addOutput(NodeEmitter.streamShaped(name, elemType, hiddenSize));
        return name;
    }
}
