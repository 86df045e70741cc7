package org.attnskip.rewrite;

import ai.onnx.proto.OnnxMl.NodeProto;
import ai.onnx.proto.OnnxMl.TensorProto;
import org.attnskip.layout.AttentionKind;
import org.attnskip.layout.DecoderLayout;
import org.attnskip.layout.LayerLayout;
import org.attnskip.onnx.Attributes;
import org.attnskip.onnx.BadInputException;
import org.attnskip.onnx.Graph;

import java.util.List;

/**
 * Separates a packed q|k|v projection into three: ONNX Runtime's model builder (and attnskip's
 * fused export) computes Q, K and V with one MatMul whose result GroupQueryAttention reads packed,
 * or a Split hands to RotaryEmbedding nodes. Freeze needs K and V alone (recomputed from another
 * layer's stream, or batched across layers), so each part gets its own MatMul on a column slice of
 * the packed weight (and bias). The slices are Slice nodes on the stored weight, which ONNX Runtime
 * folds into constants when it loads the graph: the file stores no copy of the weights.
 */
final class PackedQkvSplit {
    private PackedQkvSplit() {
    }

    /** The packed projection: MatMul(normalised, weight) [+ bias], read as {@code output}. */
    private record Packed(NodeProto matMul, String weight, String bias, String output) {
    }

    /** Splits the packed projection of every GroupQueryAttention layer from k on; true if any was packed. */
    static boolean apply(Graph g, DecoderLayout layout, int k) {
        boolean changed = false;
        for (int i = k; i < layout.numLayers(); i++) {
            LayerLayout layer = layout.layer(i);
            if (layer.attention().kind() != AttentionKind.GROUP_QUERY_ATTENTION) {
                continue;
            }
            changed |= splitLayer(g, layer);
        }
        return changed;
    }

    private static boolean splitLayer(Graph g, LayerLayout layer) {
        NodeProto core = g.producer(layer.attention().core().getOutput(0));
        String normOut = layer.attention().normOutput();
        long heads = Attributes.intOf(core, "num_heads", 0);
        long kvHeads = Attributes.intOf(core, "kv_num_heads", 0);
        NodeEmitter e = new NodeEmitter(g, "/attnskip/qkv_split/layers." + layer.index());
        boolean packedInput = core.getInputCount() < 3 || core.getInput(1).isEmpty() || core.getInput(2).isEmpty();
        if (packedInput) {
            Packed p = packed(g, layer, normOut, core.getInput(0));
            long columns = columns(g, layer, p.weight());
            if (heads <= 0 || kvHeads <= 0 || columns % (heads + 2 * kvHeads) != 0) {
                throw new BadInputException("freeze: layer " + layer.index() + "'s packed q|k|v projection has " + columns
                        + " columns, not (num_heads + 2 kv_num_heads) heads of one size");
            }
            long headDim = columns / (heads + 2 * kvHeads);
            String[] parts = parts(e, normOut, p, heads * headDim, kvHeads * headDim, kvHeads * headDim);
            NodeProto.Builder b = core.toBuilder().setInput(0, parts[0]).setInput(1, parts[1]).setInput(2, parts[2]);
            g.replace(core, b.build());
            return true;
        }
        // separate inputs: a Split of a packed projection, when rotary runs outside the attention
        for (NodeProto mm : g.consumers(normOut)) {
            if (!mm.getOpType().equals("MatMul") || !mm.getInput(0).equals(normOut) || !g.isInitializer(mm.getInput(1))) {
                continue;
            }
            String out = mm.getOutput(0);
            List<NodeProto> readers = g.consumers(out);
            if (readers.size() == 1 && isBiasAdd(g, readers.get(0), out)) {
                out = readers.get(0).getOutput(0);
                readers = g.consumers(out);
            }
            if (readers.size() != 1 || !readers.get(0).getOpType().equals("Split") || readers.get(0).getOutputCount() != 3) {
                continue;
            }
            NodeProto split = readers.get(0);
            long[] sizes = splitSizes(g, split, columns(g, layer, mm.getInput(1)));
            Packed p = packed(g, layer, normOut, out);
            String[] parts = parts(e, normOut, p, sizes);
            for (int j = 0; j < 3; j++) {
                g.replaceUses(split.getOutput(j), parts[j]);
            }
            return true;
        }
        return false;
    }

    private static Packed packed(Graph g, LayerLayout layer, String normOut, String value) {
        NodeProto p = g.producer(value);
        String bias = null;
        if (p != null && p.getOpType().equals("Add") && p.getDomain().isEmpty()) {
            for (int j = 0; j < 2; j++) {
                NodeProto mm = g.producer(p.getInput(j));
                if (mm != null && mm.getOpType().equals("MatMul") && g.isInitializer(p.getInput(1 - j))) {
                    bias = p.getInput(1 - j);
                    p = mm;
                    break;
                }
            }
        }
        if (p == null || !p.getOpType().equals("MatMul") || !p.getInput(0).equals(normOut) || !g.isInitializer(p.getInput(1))) {
            throw new BadInputException("freeze: layer " + layer.index() + "'s packed q|k|v is not one MatMul of the"
                    + " normalised stream with a stored weight; cannot compute its K/V alone");
        }
        return new Packed(p, p.getInput(1), bias, value);
    }

    /** One MatMul (and bias Add) per part, on column slices of the packed weight. */
    private static String[] parts(NodeEmitter e, String normOut, Packed p, long... widths) {
        String[] out = new String[widths.length];
        long start = 0;
        for (int j = 0; j < widths.length; j++) {
            long end = start + widths[j];
            String w = e.op("Slice", p.weight(), e.int64s("starts", start), e.int64s("ends", end), e.int64s("axes", 1));
            out[j] = e.op("MatMul", normOut, w);
            if (p.bias() != null) {
                out[j] = e.op("Add", out[j], e.op("Slice", p.bias(), e.int64s("starts", start), e.int64s("ends", end),
                        e.int64s("axes", 0)));
            }
            start = end;
        }
        return out;
    }

    private static boolean isBiasAdd(Graph g, NodeProto add, String value) {
        return add.getOpType().equals("Add") && add.getDomain().isEmpty() && add.getInputCount() == 2
                && g.isInitializer(add.getInput(0).equals(value) ? add.getInput(1) : add.getInput(0));
    }

    private static long[] splitSizes(Graph g, NodeProto split, long columns) {
        long[] sizes = null;
        if (split.getInputCount() > 1 && !split.getInput(1).isEmpty()) {
            TensorProto t = g.initializer(split.getInput(1)).orElse(null);
            sizes = t == null ? null : org.attnskip.onnx.Tensors.longs(t, null);
        } else {
            sizes = split.getAttributeList().stream().filter(a -> a.getName().equals("split")).findFirst()
                    .map(a -> a.getIntsList().stream().mapToLong(Long::longValue).toArray()).orElse(null);
        }
        long axis = Attributes.intOf(split, "axis", 0);
        if (sizes == null || sizes.length != 3 || (axis != -1 && axis != 2) || sizes[0] + sizes[1] + sizes[2] != columns) {
            throw new BadInputException("freeze: the Split of a packed q|k|v projection (" + split.getName()
                    + ") has no stored sizes along the last axis");
        }
        return sizes;
    }

    static long columns(Graph g, LayerLayout layer, String weight) {
        TensorProto t = g.initializer(weight).orElseThrow();
        if (t.getDimsCount() != 2) {
            throw new BadInputException("freeze: layer " + layer.index() + "'s projection weight '" + weight
                    + "' is not a matrix");
        }
        return t.getDims(1);
    }

    /** The width of a weight made by {@link #apply} (a column Slice of a stored one), or -1 for any other value. */
    static long sliceColumns(Graph g, String weight) {
        NodeProto s = g.producer(weight);
        if (s == null || !s.getOpType().equals("Slice") || s.getInputCount() != 4 || !g.isInitializer(s.getInput(0))) {
            return -1;
        }
        long[] starts = g.initializer(s.getInput(1)).map(t -> org.attnskip.onnx.Tensors.longs(t, null)).orElse(null);
        long[] ends = g.initializer(s.getInput(2)).map(t -> org.attnskip.onnx.Tensors.longs(t, null)).orElse(null);
        long[] axes = g.initializer(s.getInput(3)).map(t -> org.attnskip.onnx.Tensors.longs(t, null)).orElse(null);
        if (starts == null || ends == null || axes == null || axes.length != 1 || axes[0] != 1 || starts.length != 1
                || ends.length != 1 || g.initializer(s.getInput(0)).get().getDimsCount() != 2) {
            return -1;
        }
        return ends[0] - starts[0];
    }
}
