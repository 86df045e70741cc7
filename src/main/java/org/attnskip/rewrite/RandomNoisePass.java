package org.attnskip.rewrite;

import ai.onnx.proto.OnnxMl.NodeProto;
import org.attnskip.onnx.Attributes;
import ai.onnx.proto.OnnxMl.TensorProto;
import org.attnskip.layout.AttentionBlock;
import org.attnskip.layout.DecoderLayout;
import org.attnskip.layout.LayerLayout;
import org.attnskip.onnx.BadInputException;
import org.attnskip.onnx.Graph;
import org.attnskip.reference.Noise;

import java.util.ArrayList;
import java.util.List;

/**
 * random (analysis): at the input of layer k, every position but the last gets a corrupted
 * hidden vector, and layers k..L-1 run normally on top of it. The corruption comes from a new
 * graph input that the caller fills from {@code NoiseDraw} with the run's seed, so the graph and
 * the reference see the same numbers:
 * <ul>
 *   <li>gaussian: input {@value #NOISE_INPUT} [batch, sequence, hidden], rescaled to each row's norm;</li>
 *   <li>angle:a: the same input, turned into a vector at angle a to the original with its norm;</li>
 *   <li>shuffle: input {@value #PERMUTATION_INPUT} [batch, sequence, hidden] int64, a permutation per row.</li>
 * </ul>
 * With a KV cache only the positions of the current call are corrupted: cached positions were
 * computed before, so the manipulation is defined for a full-sequence pass with an empty past.
 */
public final class RandomNoisePass implements RewritePass {
    public static final String NOISE_INPUT = "attnskip_noise";
    public static final String PERMUTATION_INPUT = "attnskip_permutation";

    private final Noise noise;

    public RandomNoisePass(Noise noise) {
        this.noise = noise;
    }

    @Override
    public ChangeReport apply(Graph g, DecoderLayout layout, LayerSelection selection) {
        int k = selection.firstLayer();
        if (k < 0) {
            throw new BadInputException("random takes a threshold or --from-layer, not a list of layers");
        }
        int nodesBefore = g.nodes().size();
        List<String> notes = new ArrayList<>();
        if (k < layout.numLayers()) {
            corrupt(g, layout, layout.layer(k), noise);
            notes.add("feed input '" + (noise instanceof Noise.Shuffle ? PERMUTATION_INPUT : NOISE_INPUT)
                    + "' from NoiseDraw with the run's seed; defined for a full-sequence pass with an empty past");
        }
        g.toposort();
        int added = g.nodes().size() - nodesBefore;
        return new ChangeReport(Mode.RANDOM, selection.threshold(), List.copyOf(selection.layers()),
                k < layout.numLayers() ? k : -1, 0, added, 0, 0, 0,
                layout.kvBytesPerToken(), layout.kvBytesPerToken(), List.of(), List.of(), notes);
    }

    private static void corrupt(Graph g, DecoderLayout layout, LayerLayout layer, Noise noise) {
        String h = layer.residualIn();
        AttentionBlock attn = layer.attention();
        List<NodeProto> readers = new ArrayList<>(g.consumers(h));
        List<NodeProto> normReaders = attn.normSharedWithPreviousAdd() ? new ArrayList<>(g.consumers(attn.normOutput())) : List.of();
        int streamType = streamType(g, layout);
        NodeEmitter e = new NodeEmitter(g, "/attnskip/random/layers." + layer.index());

        String replaced;
        if (noise instanceof Noise.Shuffle) {
            String p = addInput(g, PERMUTATION_INPUT, TensorProto.DataType.INT64_VALUE, layout.hiddenSize());
            replaced = e.op("GatherElements", new ai.onnx.proto.OnnxMl.AttributeProto[] {Attributes.intAttr("axis", -1)}, h, p);
        } else if (noise instanceof Noise.Angle angle) {
            String n = addInput(g, NOISE_INPUT, streamType, layout.hiddenSize());
            String along = e.op("Div", e.reduceSumLastKeep(e.op("Mul", n, h)), e.reduceSumLastKeep(e.op("Mul", h, h)));
            String u = e.op("Sub", n, e.op("Mul", along, h));
            double rad = Math.toRadians(angle.degrees());
            String cos = scalar(g, e, "cos", (float) Math.cos(rad), streamType);
            String sin = scalar(g, e, "sin", (float) Math.sin(rad), streamType);
            String scaleU = e.op("Div", e.op("Mul", sin, norm(e, h)), norm(e, u));
            replaced = e.op("Add", e.op("Mul", cos, h), e.op("Mul", scaleU, u));
        } else { // gaussian
            String n = addInput(g, NOISE_INPUT, streamType, layout.hiddenSize());
            replaced = e.op("Mul", n, e.op("Div", norm(e, h), norm(e, n)));
        }
        // the last position keeps its own vector
        String positions = e.dim(h, 1);
        String last = e.op("Sub", positions, e.int64Scalar("one", 1));
        String index = e.op("Range", e.int64Scalar("zero", 0), positions, e.int64Scalar("step", 1));
        String isLast = e.unsqueeze(e.op("Equal", index, last), 1);
        String corrupted = e.op("Where", isLast, h, replaced);

        for (NodeProto r : readers) {
            g.renameInput(r, h, corrupted);
        }
        if (attn.normSharedWithPreviousAdd()) {
            // The fused norm normalised the clean stream; layer k must read the corrupted one.
            String renormed = g.freshName(attn.normOutput() + "_random");
            g.add(PlainNorm.of(g, attn.norm(), corrupted, renormed));
            for (NodeProto r : normReaders) {
                g.renameInput(r, attn.normOutput(), renormed);
            }
        }
    }

    private static String norm(NodeEmitter e, String x) {
        return e.op("Sqrt", e.reduceSumLastKeep(e.op("Mul", x, x)));
    }

    private static String scalar(Graph g, NodeEmitter e, String hint, float v, int type) {
        String name = g.freshName("/attnskip/random/" + hint);
        g.addInitializer(type == TensorProto.DataType.FLOAT16_VALUE
                ? org.attnskip.onnx.Tensors.float16Tensor(name, new long[0], new float[] {v})
                : org.attnskip.onnx.Tensors.floatTensor(name, new long[0], new float[] {v}));
        return name;
    }

    /** The residual stream's element type, which the logits (or last state) share in every export we know. */
    private static int streamType(Graph g, DecoderLayout layout) {
        return g.valueInfo(layout.logits()).map(v -> v.getType().getTensorType().getElemType())
                .filter(t -> t != 0).orElse(TensorProto.DataType.FLOAT_VALUE);
    }

    private static String addInput(Graph g, String name, int elemType, int hidden) {
        if (g.isGraphInput(name)) {
            throw new BadInputException("the model already has an input '" + name + "' (was it randomised before?)");
        }
        g.addInput(NodeEmitter.streamShaped(name, elemType, hidden));
        return name;
    }
}
