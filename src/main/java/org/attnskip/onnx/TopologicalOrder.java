package org.attnskip.onnx;

import ai.onnx.proto.OnnxMl.NodeProto;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Deque;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/** Kahn's algorithm over a node list, stable: among nodes that are ready, the earlier one comes first. */
final class TopologicalOrder {
    private TopologicalOrder() {
    }

    /** The nodes reordered so that every value is produced before it is used; a cycle is bad input. */
    static List<NodeProto> of(List<NodeProto> nodes, Map<String, NodeProto> producers) {
        Map<NodeProto, Integer> pending = new IdentityHashMap<>();
        Map<NodeProto, List<NodeProto>> dependents = new IdentityHashMap<>();
        for (NodeProto n : nodes) {
            Set<NodeProto> deps = Collections.newSetFromMap(new IdentityHashMap<>());
            for (String in : NodeInputs.of(n)) {
                NodeProto p = producers.get(in);
                if (p != null && p != n) {
                    deps.add(p);
                }
            }
            pending.put(n, deps.size());
            for (NodeProto d : deps) {
                dependents.computeIfAbsent(d, k -> new ArrayList<>()).add(n);
            }
        }
        Deque<NodeProto> ready = new ArrayDeque<>();
        for (NodeProto n : nodes) {
            if (pending.get(n) == 0) {
                ready.add(n);
            }
        }
        List<NodeProto> order = new ArrayList<>(nodes.size());
        while (!ready.isEmpty()) {
            NodeProto n = ready.poll();
            order.add(n);
            for (NodeProto d : dependents.getOrDefault(n, List.of())) {
                if (pending.merge(d, -1, Integer::sum) == 0) {
                    ready.add(d);
                }
            }
        }
        if (order.size() != nodes.size()) {
            throw new BadInputException("graph has a cycle: " + (nodes.size() - order.size()) + " nodes cannot be ordered");
        }
        return order;
    }
}
