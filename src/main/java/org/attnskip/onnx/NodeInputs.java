package org.attnskip.onnx;

import ai.onnx.proto.OnnxMl.AttributeProto;
import ai.onnx.proto.OnnxMl.GraphProto;
import ai.onnx.proto.OnnxMl.NodeProto;

import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.Set;

/** What a node reads: its inputs, and the outer values its subgraphs (If, Loop, Scan) read. */
public final class NodeInputs {
    private NodeInputs() {
    }

    /** The node's inputs plus the outer values its subgraphs (If, Loop, Scan) read. */
    public static Set<String> of(NodeProto n) {
        Set<String> result = new LinkedHashSet<>(n.getInputList());
        for (AttributeProto a : n.getAttributeList()) {
            if (a.hasG()) {
                collectSubgraphInputs(a.getG(), result);
            }
            for (GraphProto g : a.getGraphsList()) {
                collectSubgraphInputs(g, result);
            }
        }
        result.remove("");
        return result;
    }

    private static void collectSubgraphInputs(GraphProto g, Set<String> into) {
        Set<String> local = new HashSet<>();
        g.getInputList().forEach(v -> local.add(v.getName()));
        g.getInitializerList().forEach(t -> local.add(t.getName()));
        g.getNodeList().forEach(n -> local.addAll(n.getOutputList()));
        for (NodeProto n : g.getNodeList()) {
            for (String in : of(n)) {
                if (!local.contains(in)) {
                    into.add(in);
                }
            }
        }
    }
}
