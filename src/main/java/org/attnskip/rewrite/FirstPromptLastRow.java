package org.attnskip.rewrite;

import ai.onnx.proto.OnnxMl.AttributeProto;
import ai.onnx.proto.OnnxMl.GraphProto;
import ai.onnx.proto.OnnxMl.NodeProto;
import ai.onnx.proto.OnnxMl.TensorProto;
import ai.onnx.proto.OnnxMl.TypeProto;
import ai.onnx.proto.OnnxMl.ValueInfoProto;
import org.attnskip.onnx.Attributes;
import org.attnskip.onnx.Graph;

import java.util.ArrayList;
import java.util.List;

import static org.attnskip.layout.GroupQueryAttentionSlots.COS_CACHE;
import static org.attnskip.layout.GroupQueryAttentionSlots.SEQLENS_K;
import static org.attnskip.layout.GroupQueryAttentionSlots.SIN_CACHE;
import static org.attnskip.layout.GroupQueryAttentionSlots.TOTAL_SEQUENCE_LENGTH;

/**
 * The last position's attention in a single-input freeze's layers >= k on GroupQueryAttention,
 * where one op call must write every new position's K/V into the in-place cache. That call costs
 * rows x keys whatever its query holds ({@code local_window_size} only masks after the full
 * product), so in a first prompt of several positions it is given seqlens_k 0: each row scores
 * one key, and the call only writes the rotated K/V. The attention itself is then a one-row call
 * of the same op (same attributes) whose past is the cache just written, inside an {@code If} on
 * "first prompt of several positions", so that a decode step or a later prompt (where the writing
 * call is the layer's own and its last row is the attention) runs only one {@code If} node per
 * layer, whose other branch passes that last row on. (Outside the If, the one-row call's ops ran
 * in every decode step: measured, a few percent of a step on the 12-layer benchmark model.)
 */
final class FirstPromptLastRow {
    /** One layer's one-row call, built once the graph's public names are final. */
    private record Pending(NodeProto writer, String query, String presentKey, String presentValue, String lastRow,
                           String attention) {
    }

    private final Graph g;
    private final NodeEmitter e;
    private final String condition;
    private final String writerSeqlens;
    private final String stepSeqlens;
    private final String stepTotal;
    private final String pastEnd;
    private final List<Pending> pending = new ArrayList<>();

    /** Whether the op takes nothing past the cos/sin caches (no position ids, bias or sinks to cut to one row). */
    static boolean applies(NodeProto core) {
        for (int in = SIN_CACHE + 1; in < core.getInputCount(); in++) {
            if (!core.getInput(in).isEmpty()) {
                return false;
            }
        }
        return core.getInputCount() > TOTAL_SEQUENCE_LENGTH && !core.getInput(TOTAL_SEQUENCE_LENGTH).isEmpty();
    }

    /** @param stream a [batch, seq, ...] value of the current positions, for seq */
    FirstPromptLastRow(Graph g, NodeEmitter e, String stream, NodeProto core) {
        this.g = g;
        this.e = e;
        String seqlensK = core.getInput(SEQLENS_K);
        String total = core.getInput(TOTAL_SEQUENCE_LENGTH);
        String seq = e.dim(stream, 1);
        String total64 = e.op("Cast", new AttributeProto[] {Attributes.intAttr("to", TensorProto.DataType.INT64_VALUE)}, total);
        // the op's own test for a first prompt: seq equals total_sequence_length
        condition = e.op("And", e.op("Greater", seq, e.int64Scalar("one", 1)), e.op("Equal", seq, total64));
        String zero = e.int32Scalar("zero", 0);
        writerSeqlens = e.op("Where", condition, zero, seqlensK);
        stepSeqlens = seqlensK;
        stepTotal = total;
        pastEnd = e.op("Reshape", e.op("Sub", seq, e.int64Scalar("one", 1)), e.int64s("shape", 1));
    }

    /** The seqlens_k of the cache-writing call: 0 in a first prompt of several positions. */
    String writerSeqlens() {
        return writerSeqlens;
    }

    /**
     * Registers a layer's cache-writing call; returns the value its last position's attention will
     * be, once {@link #finish} has run.
     *
     * @param query the one-row query (before the zero rows that pad it for the writing call)
     * @param presentKey the public name the writing call's present key will have
     */
    String lastRow(NodeProto writer, String query, String presentKey, String presentValue) {
        String lastRow = PaperFreezeDeployablePass.lastPosition(e, writer.getOutput(0));
        String attention = g.freshName(lastRow + "_or_first_prompt");
        pending.add(new Pending(writer, query, presentKey, presentValue, lastRow, attention));
        return attention;
    }

    /**
     * Adds the If nodes; call after the presents took their public names.
     *
     * @param fallbackType the float type of the attention output where the op's cos cache does not tell it
     */
    void finish(int fallbackType) {
        for (Pending p : pending) {
            int floatType = attentionType(p.writer(), fallbackType);
            String then = g.freshName(p.attention() + "/first_prompt");
            List<NodeProto> nodes = new ArrayList<>();
            String pastKey = pastPositions(nodes, then, p.presentKey());
            String pastValue = pastPositions(nodes, then, p.presentValue());
            String key = lastPosition(nodes, then, p.writer().getInput(1));
            String value = lastPosition(nodes, then, p.writer().getInput(2));
            String name = g.freshName(then + "/GroupQueryAttention");
            String out = g.freshName(name + "_output_0");
            NodeProto.Builder step = p.writer().toBuilder().setName(name).clearInput().clearOutput()
                    .addInput(p.query()).addInput(key).addInput(value).addInput(pastKey).addInput(pastValue)
                    .addInput(stepSeqlens).addInput(stepTotal);
            for (int in = TOTAL_SEQUENCE_LENGTH + 1; in < p.writer().getInputCount(); in++) {
                step.addInput(p.writer().getInput(in));
            }
            nodes.add(step.addOutput(out).addOutput(g.freshName(name + "_present_key"))
                    .addOutput(g.freshName(name + "_present_value")).build());
            String elsewhere = g.freshName(p.attention() + "/elsewhere");
            String copied = g.freshName(elsewhere + "/Identity_output_0");
            NodeProto identity = NodeProto.newBuilder().setOpType("Identity").setName(g.freshName(elsewhere + "/Identity"))
                    .addInput(p.lastRow()).addOutput(copied).build();
            g.add(NodeProto.newBuilder().setOpType("If").setName(g.freshName(p.attention() + "/If"))
                    .addInput(condition).addOutput(p.attention())
                    .addAttribute(branch("then_branch", then, nodes, out, floatType))
                    .addAttribute(branch("else_branch", elsewhere, List.of(identity), copied, floatType))
                    .build());
        }
    }

    /** The op's output type is its inputs' float type: that of the cos cache, where it is stored. */
    private int attentionType(NodeProto writer, int fallback) {
        if (writer.getInputCount() > COS_CACHE && !writer.getInput(COS_CACHE).isEmpty()) {
            var cos = g.initializer(writer.getInput(COS_CACHE));
            if (cos.isPresent()) {
                return cos.get().getDataType();
            }
        }
        return g.valueInfo(writer.getInput(1)).map(v -> v.getType().getTensorType().getElemType()).orElse(fallback);
    }

    /** The cache's positions before the prompt's last: [batch, kv_heads, 0 .. seq-1, head_dim]. */
    private String pastPositions(List<NodeProto> nodes, String scope, String cache) {
        return slice(nodes, scope, cache, e.int64s("starts", 0), pastEnd, e.int64s("axes", 2));
    }

    /** The prompt's last position of a [batch, seq, hidden] value. */
    private String lastPosition(List<NodeProto> nodes, String scope, String x) {
        return slice(nodes, scope, x, e.int64s("starts", -1), e.int64s("ends", Long.MAX_VALUE), e.int64s("axes", 1));
    }

    private String slice(List<NodeProto> nodes, String scope, String x, String starts, String ends, String axes) {
        String name = g.freshName(scope + "/Slice");
        String out = g.freshName(name + "_output_0");
        nodes.add(NodeProto.newBuilder().setOpType("Slice").setName(name).addInput(x).addInput(starts).addInput(ends)
                .addInput(axes).addOutput(out).build());
        return out;
    }

    private static AttributeProto branch(String attribute, String name, List<NodeProto> nodes, String output, int floatType) {
        GraphProto graph = GraphProto.newBuilder().setName(name).addAllNode(nodes)
                .addOutput(ValueInfoProto.newBuilder().setName(output).setType(TypeProto.newBuilder()
                        .setTensorType(TypeProto.Tensor.newBuilder().setElemType(floatType))))
                .build();
        return AttributeProto.newBuilder().setName(attribute).setType(AttributeProto.AttributeType.GRAPH).setG(graph).build();
    }
}
