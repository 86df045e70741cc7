package org.attnskip.onnx;

import ai.onnx.proto.OnnxMl.NodeProto;

import java.util.ArrayDeque;
import java.util.Collection;
import java.util.Collections;
import java.util.Deque;
import java.util.HashSet;
import java.util.IdentityHashMap;
import java.util.Set;

/**
 * Reachability over the graph's data edges. Edges into Shape and Size nodes are ignored: reading a
 * tensor's shape does not depend on its values, and exporters read the past KV's shape to build
 * masks for every layer, which would otherwise tie all layers together.
 */
public final class DataFlow {
    private final Graph graph;
    private final boolean followShapeReads;

    public DataFlow(Graph graph) {
        this(graph, false);
    }

    /**
     * @param followShapeReads also follow edges into Shape and Size: for passes that must know every
     *                         value a computation depends on, its shape included
     */
    public DataFlow(Graph graph, boolean followShapeReads) {
        this.graph = graph;
        this.followShapeReads = followShapeReads;
    }

    private boolean skips(NodeProto n) {
        return !followShapeReads && readsOnlyShape(n);
    }

    public static boolean readsOnlyShape(NodeProto n) {
        return n.getOpType().equals("Shape") || n.getOpType().equals("Size");
    }

    /** Values reachable forward from the given values (included), through data edges only. */
    public Set<String> forwardValues(Collection<String> from) {
        Set<String> seen = new HashSet<>(from);
        Deque<String> work = new ArrayDeque<>(from);
        while (!work.isEmpty()) {
            for (NodeProto c : graph.consumers(work.poll())) {
                if (skips(c)) {
                    continue;
                }
                for (String out : c.getOutputList()) {
                    if (!out.isEmpty() && seen.add(out)) {
                        work.add(out);
                    }
                }
            }
        }
        return seen;
    }

    /** Nodes whose outputs the given values depend on through data edges, stopping at {@code stop}. */
    public Set<NodeProto> backwardNodes(Collection<String> from, Set<String> stop) {
        Set<NodeProto> nodes = Collections.newSetFromMap(new IdentityHashMap<>());
        Set<String> seen = new HashSet<>(from);
        Deque<String> work = new ArrayDeque<>(from);
        while (!work.isEmpty()) {
            String v = work.poll();
            if (stop.contains(v)) {
                continue;
            }
            NodeProto p = graph.producer(v);
            if (p == null || !nodes.add(p) || skips(p)) {
                continue;
            }
            for (String in : NodeInputs.of(p)) {
                if (seen.add(in)) {
                    work.add(in);
                }
            }
        }
        return nodes;
    }

    /** Graph-level values (inputs and initializers included) the given values depend on. */
    public Set<String> backwardValues(Collection<String> from) {
        Set<String> seen = new HashSet<>(from);
        Deque<String> work = new ArrayDeque<>(from);
        while (!work.isEmpty()) {
            NodeProto p = graph.producer(work.poll());
            if (p == null || skips(p)) {
                continue;
            }
            for (String in : NodeInputs.of(p)) {
                if (seen.add(in)) {
                    work.add(in);
                }
            }
        }
        return seen;
    }
}
