package org.attnskip.onnx;

import ai.onnx.proto.OnnxMl.NodeProto;
import ai.onnx.proto.OnnxMl.ValueInfoProto;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/** Checks a graph's node order the way ONNX's checker does: each value is available before it is read. */
public final class NodeOrder {
    private NodeOrder() {
    }

    /**
     * Every read, in file order, of a value that is not yet available: neither a graph input, an
     * initializer, nor an output of an earlier node. Empty exactly when the nodes are in topological order.
     */
    public static List<String> readsBeforeProduced(Graph g) {
        Set<String> available = new HashSet<>(g.initializers().keySet());
        for (ValueInfoProto v : g.inputs()) {
            available.add(v.getName());
        }
        List<String> early = new ArrayList<>();
        for (NodeProto n : g.nodes()) {
            for (String in : NodeInputs.of(n)) {
                if (!available.contains(in)) {
                    early.add(n.getName() + " (" + n.getOpType() + ") reads " + in);
                }
            }
            available.addAll(n.getOutputList());
        }
        return early;
    }
}
