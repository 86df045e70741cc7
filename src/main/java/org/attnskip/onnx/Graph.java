package org.attnskip.onnx;

import ai.onnx.proto.OnnxMl.GraphProto;
import ai.onnx.proto.OnnxMl.ModelProto;
import ai.onnx.proto.OnnxMl.NodeProto;
import ai.onnx.proto.OnnxMl.OperatorSetIdProto;
import ai.onnx.proto.OnnxMl.TensorProto;
import ai.onnx.proto.OnnxMl.ValueInfoProto;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Deque;
import java.util.HashMap;
import java.util.HashSet;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * A small mutable view of an ONNX graph: nodes, initializers, graph I/O, and the producer and
 * consumer of every value. Every rewrite pass edits the model through these few verbs
 * (add, remove, replace, renameInput, replaceUses, renameValue, toposort, cleanup). A node handle
 * taken before an edit keeps working for replace, renameInput and remove ({@link #current}); value
 * names are not tracked, so a pass that renames values reads the names it needs first.
 */
public final class Graph {
    private final ModelProto header;
    private final GraphProto graphHeader;
    private final List<NodeProto> nodes;
    private final LinkedHashMap<String, TensorProto> initializers = new LinkedHashMap<>();
    private final List<ValueInfoProto> inputs;
    private final List<ValueInfoProto> outputs;
    private final LinkedHashMap<String, ValueInfoProto> valueInfo = new LinkedHashMap<>();
    private final Set<String> usedNames = new HashSet<>();

    /**
     * Each node an edit swapped for an edited copy, to that copy: node handles taken before the
     * edit (a layout's) still find their node through {@link #current}.
     */
    private final Map<NodeProto, NodeProto> successors = new IdentityHashMap<>();
    private Map<String, NodeProto> producers;
    private Map<String, List<NodeProto>> consumers;

    public Graph(ModelProto model) {
        GraphProto g = model.getGraph();
        this.header = model.toBuilder().clearGraph().build();
        this.graphHeader = g.toBuilder().clearNode().clearInitializer().clearInput().clearOutput().clearValueInfo().build();
        this.nodes = new ArrayList<>(g.getNodeList());
        for (TensorProto t : g.getInitializerList()) {
            initializers.put(t.getName(), t);
        }
        this.inputs = new ArrayList<>(g.getInputList());
        this.outputs = new ArrayList<>(g.getOutputList());
        for (ValueInfoProto v : g.getValueInfoList()) {
            valueInfo.put(v.getName(), v);
        }
        for (NodeProto n : nodes) {
            usedNames.add(n.getName());
            usedNames.addAll(n.getOutputList());
        }
        usedNames.addAll(initializers.keySet());
        inputs.forEach(v -> usedNames.add(v.getName()));
    }

    public ModelProto toModel() {
        GraphProto.Builder g = graphHeader.toBuilder()
                .addAllNode(nodes)
                .addAllInitializer(initializers.values())
                .addAllInput(inputs)
                .addAllOutput(outputs);
        Set<String> live = new HashSet<>();
        for (NodeProto n : nodes) {
            live.addAll(n.getOutputList());
        }
        for (ValueInfoProto v : valueInfo.values()) {
            if (live.contains(v.getName())) {
                g.addValueInfo(v);
            }
        }
        return header.toBuilder().setGraph(g).build();
    }

    // ---- reading ----

    public List<NodeProto> nodes() {
        return Collections.unmodifiableList(nodes);
    }

    public List<ValueInfoProto> inputs() {
        return Collections.unmodifiableList(inputs);
    }

    public List<ValueInfoProto> outputs() {
        return Collections.unmodifiableList(outputs);
    }

    public Map<String, TensorProto> initializers() {
        return Collections.unmodifiableMap(initializers);
    }

    public Optional<TensorProto> initializer(String name) {
        return Optional.ofNullable(initializers.get(name));
    }

    public boolean isInitializer(String name) {
        return initializers.containsKey(name);
    }

    /** Graph inputs that are not initializers: what a caller must feed. */
    public List<ValueInfoProto> runtimeInputs() {
        return inputs.stream().filter(v -> !initializers.containsKey(v.getName())).toList();
    }

    public boolean isGraphInput(String name) {
        return inputs.stream().anyMatch(v -> v.getName().equals(name)) && !initializers.containsKey(name);
    }

    public boolean isGraphOutput(String name) {
        return outputs.stream().anyMatch(v -> v.getName().equals(name));
    }

    /** Type and shape of a value where the model records them (graph I/O or value_info). */
    public Optional<ValueInfoProto> valueInfo(String name) {
        for (ValueInfoProto v : inputs) {
            if (v.getName().equals(name)) {
                return Optional.of(v);
            }
        }
        for (ValueInfoProto v : outputs) {
            if (v.getName().equals(name)) {
                return Optional.of(v);
            }
        }
        return Optional.ofNullable(valueInfo.get(name));
    }

    public NodeProto producer(String value) {
        index();
        return producers.get(value);
    }

    public List<NodeProto> consumers(String value) {
        index();
        return consumers.getOrDefault(value, List.of());
    }

    /** The opset version imported for a domain ("" and "ai.onnx" are the same), or 0 when absent. */
    public long opset(String domain) {
        String d = domain.equals("ai.onnx") ? "" : domain;
        for (OperatorSetIdProto o : header.getOpsetImportList()) {
            String od = o.getDomain().equals("ai.onnx") ? "" : o.getDomain();
            if (od.equals(d)) {
                return o.getVersion();
            }
        }
        return 0;
    }

    public ModelProto header() {
        return header;
    }

    // ---- editing ----

    public void add(NodeProto node) {
        nodes.add(node);
        usedNames.add(node.getName());
        usedNames.addAll(node.getOutputList());
        producers = null;
    }

    public void remove(NodeProto node) {
        if (!removeIdentity(current(node))) {
            throw new IllegalArgumentException("node not in graph: " + node.getName());
        }
        producers = null;
    }

    public void replace(NodeProto old, NodeProto replacement) {
        old = current(old);
        for (int i = 0; i < nodes.size(); i++) {
            if (nodes.get(i) == old) {
                swap(i, replacement);
                usedNames.addAll(replacement.getOutputList());
                producers = null;
                return;
            }
        }
        throw new IllegalArgumentException("node not in graph: " + old.getName());
    }

    /** Makes every consumer (and graph output) of {@code oldValue} read {@code newValue} instead. */
    public void replaceUses(String oldValue, String newValue) {
        for (int i = 0; i < nodes.size(); i++) {
            NodeProto n = nodes.get(i);
            if (n.getInputList().contains(oldValue)) {
                swap(i, withInputRenamed(n, oldValue, newValue));
            }
        }
        if (isGraphOutput(oldValue)) {
            // A graph output keeps its public name: detach the old producer and route the new value through an Identity.
            for (int i = 0; i < nodes.size(); i++) {
                NodeProto n = nodes.get(i);
                int idx = n.getOutputList().indexOf(oldValue);
                if (idx >= 0) {
                    swap(i, n.toBuilder().setOutput(idx, freshName(oldValue + "_detached")).build());
                }
            }
            add(NodeProto.newBuilder().setOpType("Identity").setName(freshName("/attnskip/Identity"))
                    .addInput(newValue).addOutput(oldValue).build());
        }
        producers = null;
    }

    /** Makes this one node (or the copy an edit replaced it with) read {@code newValue} where it read {@code oldValue}. */
    public void renameInput(NodeProto node, String oldValue, String newValue) {
        replace(node, withInputRenamed(current(node), oldValue, newValue));
    }

    /** The node as the graph holds it now: {@code handle} itself, or the copy edits replaced it with. */
    public NodeProto current(NodeProto handle) {
        NodeProto n = handle;
        for (NodeProto next = successors.get(n); next != null; next = successors.get(n)) {
            n = next;
        }
        return n;
    }

    private void swap(int index, NodeProto replacement) {
        successors.put(nodes.get(index), replacement);
        nodes.set(index, replacement);
    }

    /** The node with every use of one input name replaced by another. */
    private static NodeProto withInputRenamed(NodeProto n, String oldValue, String newValue) {
        NodeProto.Builder b = n.toBuilder();
        for (int j = 0; j < b.getInputCount(); j++) {
            if (b.getInput(j).equals(oldValue)) {
                b.setInput(j, newValue);
            }
        }
        return b.build();
    }

    /**
     * Renames a value produced by a node: the producer and every consumer follow. Graph outputs
     * are not renamed with it, so this is how a pass frees a public output name for another value.
     */
    public void renameValue(String oldValue, String newValue) {
        for (int i = 0; i < nodes.size(); i++) {
            NodeProto n = nodes.get(i);
            boolean reads = n.getInputList().contains(oldValue);
            int out = n.getOutputList().indexOf(oldValue);
            if (reads || out >= 0) {
                NodeProto.Builder b = (reads ? withInputRenamed(n, oldValue, newValue) : n).toBuilder();
                if (out >= 0) {
                    b.setOutput(out, newValue);
                }
                swap(i, b.build());
            }
        }
        usedNames.add(newValue);
        producers = null;
    }

    public void addInitializer(TensorProto t) {
        initializers.put(t.getName(), t);
        usedNames.add(t.getName());
    }

    public void removeInput(String name) {
        inputs.removeIf(v -> v.getName().equals(name));
    }

    public void removeOutput(String name) {
        outputs.removeIf(v -> v.getName().equals(name));
    }

    public void addInput(ValueInfoProto v) {
        inputs.add(v);
        usedNames.add(v.getName());
    }

    /** Replaces the type and shape recorded for a graph output, keeping its place. */
    public void replaceOutputInfo(ValueInfoProto v) {
        for (int i = 0; i < outputs.size(); i++) {
            if (outputs.get(i).getName().equals(v.getName())) {
                outputs.set(i, v);
                return;
            }
        }
        throw new IllegalArgumentException("no graph output " + v.getName());
    }

    public void addOutput(ValueInfoProto v) {
        outputs.add(v);
    }

    /** A name not yet used by any node, value or initializer. */
    public String freshName(String base) {
        String name = base;
        int i = 1;
        while (usedNames.contains(name)) {
            name = base + "_" + i++;
        }
        usedNames.add(name);
        return name;
    }

    /** Orders nodes so that every value is produced before it is used (Kahn's algorithm, stable). */
    public void toposort() {
        index();
        List<NodeProto> order = TopologicalOrder.of(nodes, producers);
        nodes.clear();
        nodes.addAll(order);
    }

    /**
     * Removes nodes whose outputs nothing uses, then initializers and value_info nothing reads.
     * Returns the number of nodes removed. Graph inputs are left alone: removing one changes the
     * model's interface, which only a pass may decide.
     */
    public int cleanup() {
        Set<String> needed = new HashSet<>();
        outputs.forEach(v -> needed.add(v.getName()));
        index();
        Deque<String> work = new ArrayDeque<>(needed);
        Set<NodeProto> live = Collections.newSetFromMap(new IdentityHashMap<>());
        while (!work.isEmpty()) {
            NodeProto p = producers.get(work.poll());
            if (p != null && live.add(p)) {
                for (String in : NodeInputs.of(p)) {
                    if (!in.isEmpty() && needed.add(in)) {
                        work.add(in);
                    }
                }
            }
        }
        int before = nodes.size();
        nodes.removeIf(n -> !live.contains(n));
        Set<String> dead = new HashSet<>(initializers.keySet());
        dead.removeAll(needed);
        initializers.keySet().removeAll(dead);
        // Old IR versions also list initializers among the graph inputs.
        inputs.removeIf(v -> dead.contains(v.getName()));
        producers = null;
        return before - nodes.size();
    }

    private boolean removeIdentity(NodeProto node) {
        for (int i = 0; i < nodes.size(); i++) {
            if (nodes.get(i) == node) {
                nodes.remove(i);
                return true;
            }
        }
        return false;
    }

    private void index() {
        if (producers != null) {
            return;
        }
        producers = new HashMap<>();
        consumers = new HashMap<>();
        for (NodeProto n : nodes) {
            for (String out : n.getOutputList()) {
                if (!out.isEmpty()) {
                    producers.put(out, n);
                }
            }
            for (String in : NodeInputs.of(n)) {
                consumers.computeIfAbsent(in, k -> new ArrayList<>()).add(n);
            }
        }
    }
}
