package org.attnskip.onnx;

import ai.onnx.proto.OnnxMl.GraphProto;
import ai.onnx.proto.OnnxMl.NodeProto;
import ai.onnx.proto.OnnxMl.TensorProto;
import ai.onnx.proto.OnnxMl.ValueInfoProto;

import java.util.HashSet;
import java.util.Set;

/**
 * The structural part of ONNX's graph checker, run on a rewritten graph before it is written:
 * every value a node reads (its subgraphs' outer values included) is a graph input, an
 * initializer or a node's output; every graph output is produced; no value is produced twice.
 * A problem the original model already had (some exporters emit duplicate Constants, which ONNX
 * Runtime accepts; a damaged input) is the input's, not the rewrite's, and is let through as
 * before. Node order is not checked: ONNX Runtime sorts the graph itself. Cheaper than opening an
 * ONNX Runtime session (no weights are touched, so it costs nothing on a model of many gigabytes)
 * and it names the first broken value. Operator schemas and types are left to ONNX Runtime when
 * the model is opened.
 */
public final class GraphCheck {
    private GraphCheck() {
    }

    /**
     * Throws {@link InvalidGraphException} naming the first problem of {@code rewritten} that
     * {@code original} does not share; {@code what} says whose graph it is.
     */
    public static void requireWellFormed(GraphProto rewritten, GraphProto original, String what) {
        Set<String> inherited = new HashSet<>();
        problem(original, inherited, Set.of());
        String problem = problem(rewritten, new HashSet<>(), inherited);
        if (problem != null) {
            throw new InvalidGraphException(what + " is not a valid graph, nothing written: " + problem);
        }
    }

    /**
     * Throws {@link BadInputException} when a model given to attnskip is itself broken (a value
     * read but never provided, an output never produced), so that the check after a rewrite
     * blames the rewrite only for what it broke. Values produced twice are let through, as above.
     */
    public static void requireValidInput(GraphProto g, String what) {
        String problem = problem(g, new HashSet<>(), producedTwice(g));
        if (problem != null) {
            throw new BadInputException(what + " is not a valid ONNX graph: " + problem);
        }
    }

    /** The first structural problem of the graph, or null when there is none. */
    public static String problem(GraphProto g) {
        return problem(g, new HashSet<>(), Set.of());
    }

    /** The first problem whose value is not {@code excused}, or null; adds every value with a problem to {@code found}. */
    private static String problem(GraphProto g, Set<String> found, Set<String> excused) {
        String first = null;
        Set<String> available = new HashSet<>();
        for (ValueInfoProto in : g.getInputList()) {
            available.add(in.getName());
        }
        for (TensorProto t : g.getInitializerList()) {
            available.add(t.getName());
        }
        Set<String> produced = new HashSet<>();
        for (NodeProto n : g.getNodeList()) {
            for (String out : n.getOutputList()) {
                if (!out.isEmpty() && !produced.add(out) && found.add(out) && first == null && !excused.contains(out)) {
                    first = "value '" + out + "' is produced twice (again by node '" + n.getName() + "')";
                }
            }
        }
        available.addAll(produced);
        for (NodeProto n : g.getNodeList()) {
            for (String in : NodeInputs.of(n)) {
                if (!available.contains(in) && found.add(in) && first == null && !excused.contains(in)) {
                    first = "node '" + n.getName() + "' (" + n.getOpType() + ") reads '" + in
                            + "', which no node, initializer or graph input provides";
                }
            }
        }
        for (ValueInfoProto out : g.getOutputList()) {
            if (!available.contains(out.getName()) && found.add(out.getName()) && first == null
                    && !excused.contains(out.getName())) {
                first = "graph output '" + out.getName() + "' is not produced";
            }
        }
        return first;
    }

    private static Set<String> producedTwice(GraphProto g) {
        Set<String> seen = new HashSet<>();
        Set<String> twice = new HashSet<>();
        for (NodeProto n : g.getNodeList()) {
            for (String out : n.getOutputList()) {
                if (!out.isEmpty() && !seen.add(out)) {
                    twice.add(out);
                }
            }
        }
        return twice;
    }
}
