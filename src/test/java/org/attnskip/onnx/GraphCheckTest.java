package org.attnskip.onnx;

import ai.onnx.proto.OnnxMl.GraphProto;
import ai.onnx.proto.OnnxMl.NodeProto;
import ai.onnx.proto.OnnxMl.ValueInfoProto;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class GraphCheckTest {
    private static NodeProto relu(String name, String in, String out) {
        return NodeProto.newBuilder().setOpType("Relu").setName(name).addInput(in).addOutput(out).build();
    }

    private static GraphProto graph(String output, NodeProto... nodes) {
        GraphProto.Builder g = GraphProto.newBuilder().addInput(ValueInfoProto.newBuilder().setName("x"))
                .addOutput(ValueInfoProto.newBuilder().setName(output));
        for (NodeProto n : nodes) {
            g.addNode(n);
        }
        return g.build();
    }

    @Test
    void aWellFormedGraphPassesInAnyNodeOrder() {
        assertNull(GraphCheck.problem(graph("z", relu("b", "y", "z"), relu("a", "x", "y"))));
    }

    @Test
    void namesAValueNothingProvides() {
        assertEquals("node 'b' (Relu) reads 'w', which no node, initializer or graph input provides",
                GraphCheck.problem(graph("z", relu("a", "x", "y"), relu("b", "w", "z"))));
    }

    @Test
    void namesAnOutputNothingProduces() {
        assertEquals("graph output 'q' is not produced", GraphCheck.problem(graph("q", relu("a", "x", "y"))));
    }

    @Test
    void aDuplicateIsRefusedUnlessTheOriginalHadIt() {
        GraphProto twice = graph("y", relu("a", "x", "y"), relu("b", "x", "y"));
        GraphProto clean = graph("y", relu("a", "x", "y"));
        InvalidGraphException e = assertThrows(InvalidGraphException.class,
                () -> GraphCheck.requireWellFormed(twice, clean, "the test rewrite"));
        assertTrue(e.getMessage().startsWith("the test rewrite is not a valid graph, nothing written: value 'y' is produced twice"),
                e.getMessage());
        assertDoesNotThrow(() -> GraphCheck.requireWellFormed(twice, twice, "an exporter's own duplicate"));
    }

    @Test
    void aBrokenInputIsTheUsersProblemNotTheRewrites() {
        BadInputException e = assertThrows(BadInputException.class,
                () -> GraphCheck.requireValidInput(graph("z", relu("a", "x", "y"), relu("b", "w", "z")), "in.onnx"));
        assertEquals("in.onnx is not a valid ONNX graph: node 'b' (Relu) reads 'w', which no node, initializer or graph"
                + " input provides", e.getMessage());
        assertDoesNotThrow(() -> GraphCheck.requireValidInput(graph("y", relu("a", "x", "y"), relu("b", "x", "y")),
                "an exporter's own duplicate"));
    }

    @Test
    void aDamagedInputsOwnHoleIsNotBlamedOnTheRewrite() {
        GraphProto damaged = graph("z", relu("a", "x", "y"), relu("b", "w", "z"));
        assertDoesNotThrow(() -> GraphCheck.requireWellFormed(damaged, damaged, "a rewrite of a damaged model"));
        GraphProto worse = graph("z", relu("a", "v", "y"), relu("b", "w", "z"));
        InvalidGraphException e = assertThrows(InvalidGraphException.class,
                () -> GraphCheck.requireWellFormed(worse, damaged, "the test rewrite"));
        assertTrue(e.getMessage().endsWith("node 'a' (Relu) reads 'v', which no node, initializer or graph input provides"),
                e.getMessage());
    }
}
