package org.attnskip.onnx;

import ai.onnx.proto.OnnxMl.AttributeProto;
import ai.onnx.proto.OnnxMl.FunctionProto;
import ai.onnx.proto.OnnxMl.GraphProto;
import ai.onnx.proto.OnnxMl.ModelProto;
import ai.onnx.proto.OnnxMl.NodeProto;
import ai.onnx.proto.OnnxMl.OperatorSetIdProto;
import ai.onnx.proto.OnnxMl.ValueInfoProto;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * Replaces every call of a model-local function ({@code ModelProto.functions}, a node whose domain
 * and op type name a {@code FunctionProto}) by the function's body, so that discovery and every
 * rewrite see one flat graph; what a rewrite saves is then the inlined graph. Hand-written because
 * no Java library inlines ONNX functions (onnx's inliner lives in its C++/Python package).
 *
 * <p>Each call's formal inputs and outputs become the caller's values, every other value and node
 * name gets a prefix no name of the model starts with, attribute references ({@code ref_attr_name})
 * take the caller's attribute or the function's default, and calls inside a body (nested
 * functions) are inlined in turn. The functions' opset imports join the model's.
 */
public final class FunctionInliner {
    /** Nested calls deeper than this are taken for recursion. */
    static final int MAX_DEPTH = 32;
    /** Nested calls can multiply a body exponentially: past this many nodes the model is refused. */
    static final int MAX_NODES = 2_000_000;

    private final Map<String, FunctionProto> functions = new HashMap<>();
    private final TreeSet<String> usedNames = new TreeSet<>();
    private final Set<String> calledFunctions = new HashSet<>();
    /** Calls inlined, by function name, in the order first met. */
    private final Map<String, Integer> callsByName = new LinkedHashMap<>();
    private int nodeCount;
    private int callCount;

    private FunctionInliner(ModelProto model) {
        for (FunctionProto f : model.getFunctionsList()) {
            if (functions.put(key(f.getDomain(), f.getName(), f.getOverload()), f) != null) {
                throw new BadInputException("local function " + f.getDomain() + "::" + f.getName()
                        + " is defined twice");
            }
        }
        collectNames(model.getGraph());
    }

    /**
     * The flat model and what was inlined ("DecoderLayer x4", one entry per function called); the
     * model itself and no entries when it has no local functions.
     */
    public record Inlined(ModelProto model, List<String> calls) {
    }

    /** The model with every local function call inlined; the model itself when it has no local functions. */
    public static ModelProto inline(ModelProto model) {
        return inlineAndCount(model).model();
    }

    public static Inlined inlineAndCount(ModelProto model) {
        if (model.getFunctionsCount() == 0) {
            return new Inlined(model, List.of());
        }
        FunctionInliner inliner = new FunctionInliner(model);
        GraphProto.Builder graph = model.getGraph().toBuilder();
        inliner.inlineGraph(graph, 0);
        ModelProto.Builder out = model.toBuilder().setGraph(graph).clearFunctions();
        out.clearOpsetImport().addAllOpsetImport(inliner.opsets(model, graph.build()));
        List<String> calls = new ArrayList<>();
        inliner.callsByName.forEach((name, n) -> calls.add(name + " x" + n));
        return new Inlined(out.build(), List.copyOf(calls));
    }

    private static String key(String domain, String name, String overload) {
        return domain + "\u0000" + name + "\u0000" + overload;
    }

    private FunctionProto functionOf(NodeProto n) {
        return functions.get(key(n.getDomain(), n.getOpType(), n.getOverload()));
    }

    /** {@code depth}: the calls this graph is nested in (a subgraph of a body counts its function's). */
    private void inlineGraph(GraphProto.Builder graph, int depth) {
        List<NodeProto> flat = new ArrayList<>();
        List<ValueInfoProto> infos = new ArrayList<>();
        for (NodeProto n : graph.getNodeList()) {
            emit(inlineSubgraphs(n, depth), depth, flat, infos);
        }
        graph.clearNode().addAllNode(flat).addAllValueInfo(infos);
    }

    /** Calls inside an If/Loop/Scan body are inlined too. */
    private NodeProto inlineSubgraphs(NodeProto n, int depth) {
        if (n.getAttributeList().stream().noneMatch(a -> a.hasG() || a.getGraphsCount() > 0)) {
            return n;
        }
        NodeProto.Builder b = n.toBuilder();
        for (AttributeProto.Builder a : b.getAttributeBuilderList()) {
            if (a.hasG()) {
                inlineGraph(a.getGBuilder(), depth);
            }
            for (GraphProto.Builder sub : a.getGraphsBuilderList()) {
                inlineGraph(sub, depth);
            }
        }
        return b.build();
    }

    /** Appends {@code n}, or the body of the function it calls (inlined all the way down), to {@code out}. */
    private void emit(NodeProto n, int depth, List<NodeProto> out, List<ValueInfoProto> infos) {
        FunctionProto f = functionOf(n);
        if (f == null) {
            if (++nodeCount > MAX_NODES) {
                throw new BadInputException("inlining the model's local functions would make over " + MAX_NODES
                        + " nodes");
            }
            out.add(n);
            return;
        }
        if (depth >= MAX_DEPTH) {
            throw new BadInputException("local function " + f.getName() + " calls itself (or nests over " + MAX_DEPTH
                    + " calls deep)");
        }
        if (n.getInputCount() > f.getInputCount() || n.getOutputCount() > f.getOutputCount()) {
            throw new BadInputException("node '" + n.getName() + "' calls local function " + f.getName() + " with "
                    + n.getInputCount() + " inputs and " + n.getOutputCount() + " outputs; it declares "
                    + f.getInputCount() + " and " + f.getOutputCount());
        }
        calledFunctions.add(key(f.getDomain(), f.getName(), f.getOverload()));
        callsByName.merge(f.getName(), 1, Integer::sum);
        String prefix = freshPrefix(n.getName().isEmpty() ? f.getName() : n.getName());
        Map<String, String> names = new HashMap<>();
        for (int i = 0; i < f.getInputCount(); i++) {
            names.put(f.getInput(i), i < n.getInputCount() ? n.getInput(i) : "");
        }
        for (int i = 0; i < f.getOutputCount(); i++) {
            String actual = i < n.getOutputCount() ? n.getOutput(i) : "";
            names.put(f.getOutput(i), actual.isEmpty() ? claim(prefix + f.getOutput(i)) : actual);
        }
        for (NodeProto body : f.getNodeList()) {
            for (String o : body.getOutputList()) {
                if (!o.isEmpty() && !names.containsKey(o)) {
                    names.put(o, claim(prefix + o));
                }
            }
        }
        Map<String, AttributeProto> given = attributesOf(n, f);
        int index = 0;
        for (NodeProto body : f.getNodeList()) {
            NodeProto.Builder copy = body.toBuilder()
                    .setName(claim(prefix + (body.getName().isEmpty() ? "node_" + index : body.getName())));
            index++;
            copy.clearInput();
            for (String in : body.getInputList()) {
                copy.addInput(in.isEmpty() ? "" : mapped(names, in, f));
            }
            copy.clearOutput();
            for (String o : body.getOutputList()) {
                copy.addOutput(o.isEmpty() ? "" : names.get(o));
            }
            copy.clearAttribute();
            for (AttributeProto a : body.getAttributeList()) {
                AttributeProto resolved = resolve(a, given);
                if (resolved != null) {
                    copy.addAttribute(rename(resolved, names, prefix));
                }
            }
            emit(inlineSubgraphs(copy.build(), depth + 1), depth + 1, out, infos);
        }
        for (ValueInfoProto v : f.getValueInfoList()) {
            String name = names.get(v.getName());
            if (name != null && name.startsWith(prefix)) {
                infos.add(v.toBuilder().setName(name).build());
            }
        }
    }

    private static String mapped(Map<String, String> names, String value, FunctionProto f) {
        String m = names.get(value);
        if (m == null) {
            throw new BadInputException("local function " + f.getName() + " reads '" + value
                    + "', which is neither its input nor made inside it");
        }
        return m;
    }

    /** The call's attributes by name, over the function's declared defaults. */
    private static Map<String, AttributeProto> attributesOf(NodeProto call, FunctionProto f) {
        Map<String, AttributeProto> given = new HashMap<>();
        for (AttributeProto d : f.getAttributeProtoList()) {
            given.put(d.getName(), d);
        }
        for (AttributeProto a : call.getAttributeList()) {
            given.put(a.getName(), a);
        }
        return given;
    }

    /** A reference to the caller's attribute becomes its value under this attribute's name; absent, it is left out. */
    private static AttributeProto resolve(AttributeProto a, Map<String, AttributeProto> given) {
        if (a.getRefAttrName().isEmpty()) {
            return a;
        }
        AttributeProto value = given.get(a.getRefAttrName());
        return value == null ? null : value.toBuilder().setName(a.getName()).clearRefAttrName().build();
    }

    /**
     * A subgraph attribute inside a body: its references to the function's values take their new
     * names, and the values it makes itself are prefixed like the rest of the body.
     */
    private AttributeProto rename(AttributeProto a, Map<String, String> names, String prefix) {
        if (!a.hasG() && a.getGraphsCount() == 0) {
            return a;
        }
        AttributeProto.Builder b = a.toBuilder();
        if (a.hasG()) {
            b.setG(renameSubgraph(a.getG(), names, prefix));
        }
        b.clearGraphs();
        for (GraphProto sub : a.getGraphsList()) {
            b.addGraphs(renameSubgraph(sub, names, prefix));
        }
        return b.build();
    }

    private GraphProto renameSubgraph(GraphProto sub, Map<String, String> outer, String prefix) {
        Map<String, String> names = new HashMap<>(outer);
        sub.getInputList().forEach(v -> names.put(v.getName(), claim(prefix + v.getName())));
        sub.getInitializerList().forEach(t -> names.put(t.getName(), claim(prefix + t.getName())));
        for (NodeProto n : sub.getNodeList()) {
            n.getOutputList().stream().filter(o -> !o.isEmpty()).forEach(o -> names.put(o, claim(prefix + o)));
        }
        GraphProto.Builder b = sub.toBuilder().clearInput().clearOutput().clearInitializer().clearValueInfo().clearNode();
        sub.getInputList().forEach(v -> b.addInput(v.toBuilder().setName(names.get(v.getName()))));
        sub.getOutputList().forEach(v -> b.addOutput(v.toBuilder().setName(names.getOrDefault(v.getName(), v.getName()))));
        sub.getInitializerList().forEach(t -> b.addInitializer(t.toBuilder().setName(names.get(t.getName()))));
        sub.getValueInfoList().stream().filter(v -> names.containsKey(v.getName()))
                .forEach(v -> b.addValueInfo(v.toBuilder().setName(names.get(v.getName()))));
        for (NodeProto n : sub.getNodeList()) {
            NodeProto.Builder c = n.toBuilder().clearInput().clearOutput().clearAttribute();
            n.getInputList().forEach(i -> c.addInput(names.getOrDefault(i, i)));
            n.getOutputList().forEach(o -> c.addOutput(o.isEmpty() ? "" : names.get(o)));
            n.getAttributeList().forEach(a -> c.addAttribute(rename(a, names, prefix)));
            b.addNode(c);
        }
        return b.build();
    }

    /** A prefix that no name in the model (nor one made so far) starts with. */
    private String freshPrefix(String base) {
        while (true) {
            String prefix = base + "/inlined_" + (callCount++) + "/";
            String next = usedNames.ceiling(prefix);
            if (next == null || !next.startsWith(prefix)) {
                return prefix;
            }
        }
    }

    private String claim(String name) {
        usedNames.add(name);
        return name;
    }

    private void collectNames(GraphProto g) {
        g.getInputList().forEach(v -> usedNames.add(v.getName()));
        g.getInitializerList().forEach(t -> usedNames.add(t.getName()));
        for (NodeProto n : g.getNodeList()) {
            usedNames.add(n.getName());
            usedNames.addAll(n.getOutputList());
            for (AttributeProto a : n.getAttributeList()) {
                if (a.hasG()) {
                    collectNames(a.getG());
                }
                a.getGraphsList().forEach(this::collectNames);
            }
        }
    }

    /**
     * The model's imports plus those of the functions it called; an import of a function's own
     * domain goes when no node is left in it. A domain imported at two versions cannot be inlined
     * faithfully (an op may mean different things), so it is refused.
     */
    private List<OperatorSetIdProto> opsets(ModelProto model, GraphProto inlined) {
        Map<String, Long> versions = new LinkedHashMap<>();
        model.getOpsetImportList().forEach(o -> versions.put(o.getDomain(), o.getVersion()));
        for (String k : calledFunctions) {
            FunctionProto f = functions.get(k);
            for (OperatorSetIdProto o : f.getOpsetImportList()) {
                Long have = versions.putIfAbsent(o.getDomain(), o.getVersion());
                if (have != null && have != o.getVersion() && !isFunctionDomain(o.getDomain())) {
                    throw new BadInputException("local function " + f.getName() + " imports domain '" + o.getDomain()
                            + "' at version " + o.getVersion() + " but the model at " + have
                            + ": its body cannot be inlined as written");
                }
            }
        }
        Set<String> usedDomains = new HashSet<>();
        collectDomains(inlined, usedDomains);
        List<OperatorSetIdProto> out = new ArrayList<>();
        versions.forEach((domain, version) -> {
            if (!isFunctionDomain(domain) || usedDomains.contains(domain)) {
                out.add(OperatorSetIdProto.newBuilder().setDomain(domain).setVersion(version).build());
            }
        });
        return out;
    }

    private boolean isFunctionDomain(String domain) {
        if (domain.isEmpty() || domain.equals("ai.onnx")) {
            return false;
        }
        return functions.values().stream().anyMatch(f -> f.getDomain().equals(domain));
    }

    private static void collectDomains(GraphProto g, Set<String> domains) {
        for (NodeProto n : g.getNodeList()) {
            domains.add(n.getDomain());
            for (AttributeProto a : n.getAttributeList()) {
                if (a.hasG()) {
                    collectDomains(a.getG(), domains);
                }
                a.getGraphsList().forEach(sub -> collectDomains(sub, domains));
            }
        }
    }
}
