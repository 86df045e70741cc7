package org.attnskip.onnx;

import ai.onnx.proto.OnnxMl.AttributeProto;
import ai.onnx.proto.OnnxMl.FunctionProto;
import ai.onnx.proto.OnnxMl.GraphProto;
import ai.onnx.proto.OnnxMl.ModelProto;
import ai.onnx.proto.OnnxMl.NodeProto;
import ai.onnx.proto.OnnxMl.OperatorSetIdProto;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The inliner's bookkeeping on hand-made functions; LocalFunctionLayersTest checks a whole decoder numerically. */
class FunctionInlinerTest {
    private static final String DOMAIN = "local";

    @Test
    void aModelWithoutFunctionsIsReturnedAsIs() {
        ModelProto m = model(List.of(node("Relu", "", "r", List.of("x"), List.of("y"))));
        assertSame(m, FunctionInliner.inline(m));
    }

    /** Two calls of one function: separate internal names, formals bound to each call's values, refs resolved. */
    @Test
    void twoCallsGetTheirOwnNamesAndAttributes() {
        FunctionProto scale = FunctionProto.newBuilder().setName("Scale").setDomain(DOMAIN).addInput("a").addOutput("b")
                .addAttribute("factor").addOpsetImport(opset("", 17))
                .addNode(node("Constant", "", "c", List.of(), List.of("k"),
                        AttributeProto.newBuilder().setName("value_float").setType(AttributeProto.AttributeType.FLOAT)
                                .setRefAttrName("factor").build()))
                .addNode(node("Mul", "", "m", List.of("a", "k"), List.of("b")))
                .build();
        ModelProto m = model(List.of(
                node("Scale", DOMAIN, "first", List.of("x"), List.of("h"), Attributes.floatAttr("factor", 2f)),
                node("Scale", DOMAIN, "second", List.of("h"), List.of("y"), Attributes.floatAttr("factor", 3f))))
                .toBuilder().addFunctions(scale).addOpsetImport(opset(DOMAIN, 1)).build();

        ModelProto flat = FunctionInliner.inline(m);
        List<NodeProto> nodes = flat.getGraph().getNodeList();
        assertEquals(List.of("Constant", "Mul", "Constant", "Mul"), nodes.stream().map(NodeProto::getOpType).toList());
        assertEquals(0, flat.getFunctionsCount());
        assertEquals(List.of(""), flat.getOpsetImportList().stream().map(OperatorSetIdProto::getDomain).toList());
        assertEquals("x", nodes.get(1).getInput(0));
        assertEquals("h", nodes.get(1).getOutput(0));
        assertEquals("h", nodes.get(3).getInput(0));
        assertEquals("y", nodes.get(3).getOutput(0));
        assertEquals(nodes.get(0).getOutput(0), nodes.get(1).getInput(1));
        assertTrue(!nodes.get(0).getOutput(0).equals(nodes.get(2).getOutput(0)), "each call's constant has its own name");
        assertEquals(2f, nodes.get(0).getAttribute(0).getF());
        assertEquals("value_float", nodes.get(0).getAttribute(0).getName());
        assertEquals("", nodes.get(0).getAttribute(0).getRefAttrName());
        assertEquals(3f, nodes.get(2).getAttribute(0).getF());
        assertEquals(null, GraphCheck.problem(flat.getGraph()));
    }

    @Test
    void aFunctionThatCallsItselfIsRefused() {
        FunctionProto recurse = FunctionProto.newBuilder().setName("Recurse").setDomain(DOMAIN).addInput("a").addOutput("b")
                .addNode(node("Recurse", DOMAIN, "again", List.of("a"), List.of("b"))).build();
        ModelProto m = model(List.of(node("Recurse", DOMAIN, "call", List.of("x"), List.of("y"))))
                .toBuilder().addFunctions(recurse).build();
        BadInputException e = assertThrows(BadInputException.class, () -> FunctionInliner.inline(m));
        assertTrue(e.getMessage().contains("calls itself"), e.getMessage());
    }

    /** The recursion hides in a branch of an If inside the body: still refused, not a stack overflow. */
    @Test
    void recursionThroughASubgraphIsRefused() {
        GraphProto branch = GraphProto.newBuilder().setName("then")
                .addNode(node("Recurse", DOMAIN, "again", List.of("a"), List.of("c")))
                .addOutput(ai.onnx.proto.OnnxMl.ValueInfoProto.newBuilder().setName("c")).build();
        FunctionProto recurse = FunctionProto.newBuilder().setName("Recurse").setDomain(DOMAIN).addInput("a").addOutput("b")
                .addNode(node("If", "", "branch", List.of("a"), List.of("b"),
                        AttributeProto.newBuilder().setName("then_branch").setType(AttributeProto.AttributeType.GRAPH)
                                .setG(branch).build(),
                        AttributeProto.newBuilder().setName("else_branch").setType(AttributeProto.AttributeType.GRAPH)
                                .setG(branch).build()))
                .build();
        ModelProto m = model(List.of(node("Recurse", DOMAIN, "call", List.of("x"), List.of("y"))))
                .toBuilder().addFunctions(recurse).build();
        BadInputException e = assertThrows(BadInputException.class, () -> FunctionInliner.inline(m));
        assertTrue(e.getMessage().contains("calls itself"), e.getMessage());
    }

    @Test
    void aBodyReadingAValueFromNowhereIsRefused() {
        FunctionProto leaky = FunctionProto.newBuilder().setName("Leaky").setDomain(DOMAIN).addInput("a").addOutput("b")
                .addNode(node("Add", "", "add", List.of("a", "outer"), List.of("b"))).build();
        ModelProto m = model(List.of(node("Leaky", DOMAIN, "call", List.of("x"), List.of("y"))))
                .toBuilder().addFunctions(leaky).build();
        BadInputException e = assertThrows(BadInputException.class, () -> FunctionInliner.inline(m));
        assertTrue(e.getMessage().contains("'outer'"), e.getMessage());
    }

    private static ModelProto model(List<NodeProto> nodes) {
        GraphProto g = GraphProto.newBuilder().setName("g").addAllNode(nodes)
                .addInput(ai.onnx.proto.OnnxMl.ValueInfoProto.newBuilder().setName("x"))
                .addOutput(ai.onnx.proto.OnnxMl.ValueInfoProto.newBuilder().setName("y")).build();
        return ModelProto.newBuilder().setIrVersion(9).addOpsetImport(opset("", 17)).setGraph(g).build();
    }

    private static OperatorSetIdProto opset(String domain, long version) {
        return OperatorSetIdProto.newBuilder().setDomain(domain).setVersion(version).build();
    }

    private static NodeProto node(String op, String domain, String name, List<String> in, List<String> out,
                                  AttributeProto... attrs) {
        return NodeProto.newBuilder().setOpType(op).setDomain(domain).setName(name).addAllInput(in).addAllOutput(out)
                .addAllAttribute(List.of(attrs)).build();
    }
}
