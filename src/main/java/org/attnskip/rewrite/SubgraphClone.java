package org.attnskip.rewrite;

import ai.onnx.proto.OnnxMl.NodeProto;
import org.attnskip.onnx.DataFlow;
import org.attnskip.onnx.Graph;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Copies the part of a graph that lies between some source values and some target values, with
 * the sources replaced by other values: "the same computation, on another input". The copies get
 * fresh names; the originals stay until cleanup finds them dead.
 */
final class SubgraphClone {
    private SubgraphClone() {
    }

    /**
     * Copies every node on a data path from a source to a target (targets' producers included).
     *
     * @param substitutes   source value -> the value the copy reads instead
     * @param targets       values whose computation is copied
     * @param followShapes  also count reading a source's shape as depending on it
     * @param stop          values above which the copy never reaches, even if they depend on a source
     * @return each copied value's new name, keyed by the original name (substitutes included)
     */
    static Map<String, String> copy(Graph g, Map<String, String> substitutes, List<String> targets,
                                    boolean followShapes, Set<String> stop, String prefix) {
        DataFlow flow = new DataFlow(g, followShapes);
        Set<String> downstream = flow.forwardValues(substitutes.keySet());
        Set<String> stopAt = new HashSet<>(stop);
        stopAt.addAll(substitutes.keySet());
        Set<NodeProto> upstream = flow.backwardNodes(targets, stopAt);
        Map<String, String> renamed = new HashMap<>(substitutes);
        List<NodeProto> copies = new ArrayList<>();
        for (NodeProto n : g.nodes()) {
            if (!upstream.contains(n) || n.getOutputList().stream().noneMatch(downstream::contains)) {
                continue;
            }
            String base = n.getName().isEmpty() ? n.getOpType() : n.getName();
            NodeProto.Builder c = n.toBuilder().setName(g.freshName(prefix + "/" + base));
            for (int j = 0; j < c.getInputCount(); j++) {
                c.setInput(j, renamed.getOrDefault(c.getInput(j), c.getInput(j)));
            }
            for (int j = 0; j < c.getOutputCount(); j++) {
                String o = c.getOutput(j);
                if (!o.isEmpty()) {
                    String fresh = g.freshName(o + "_" + prefix.substring(prefix.lastIndexOf('/') + 1));
                    renamed.put(o, fresh);
                    c.setOutput(j, fresh);
                }
            }
            copies.add(c.build());
        }
        copies.forEach(g::add);
        return renamed;
    }
}
