package org.attnskip.onnx;

import ai.onnx.proto.OnnxMl.GraphProto;
import ai.onnx.proto.OnnxMl.ModelProto;
import ai.onnx.proto.OnnxMl.NodeProto;
import ai.onnx.proto.OnnxMl.OperatorSetIdProto;
import ai.onnx.proto.OnnxMl.TensorProto;
import ai.onnx.proto.OnnxMl.TypeProto;
import ai.onnx.proto.OnnxMl.ValueInfoProto;
import org.attnskip.Fixtures;
import org.junit.jupiter.api.Test;

import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The graph view's two structural verbs: toposort on a real out-of-order export, and cleanup of dead parts. */
class GraphTest {

    @Test
    void toposortPutsEveryProducerBeforeItsReaders() {
        Graph g = OnnxModelIO.load(Fixtures.model("torch-gpt2-past/gpt2_past.onnx")).graph();
        List<NodeProto> fileOrder = List.copyOf(g.nodes());
        List<String> early = NodeOrder.readsBeforeProduced(g);
        assertEquals(144, early.size(), "the shared models' README: 144 values are used before the node that makes them");

        g.toposort();
        assertEquals(List.of(), NodeOrder.readsBeforeProduced(g));
        // the same nodes, each exactly once: only the order changed
        assertEquals(fileOrder.size(), g.nodes().size());
        Map<NodeProto, Boolean> seen = new IdentityHashMap<>();
        g.nodes().forEach(n -> seen.put(n, true));
        assertTrue(fileOrder.stream().allMatch(seen::containsKey));
    }

    @Test
    void cleanupDropsANodeWhoseConsumerWasRemovedAndItsInitializer() {
        // y = x * w1 (kept);  z = Relu(x + w2), where the Relu is then removed along with output z
        Graph g = new Graph(model(
                node("Mul", "mul", "y", "x", "w1"),
                node("Add", "add", "b", "x", "w2"),
                node("Relu", "relu", "z", "b")));
        assertEquals(0, g.cleanup(), "nothing is dead yet");
        NodeProto relu = g.consumers("b").get(0);
        assertEquals("relu", relu.getName());

        g.remove(relu);
        g.removeOutput("z");
        assertEquals(1, g.cleanup());
        assertEquals(List.of("mul"), g.nodes().stream().map(NodeProto::getName).toList());
        assertEquals(Set.of("w1"), g.initializers().keySet());
        assertEquals(List.of("x"), g.inputs().stream().map(ValueInfoProto::getName).toList());
    }

    @Test
    void aHandleTakenBeforeEditsStillFindsItsNode() {
        Graph g = new Graph(model(
                node("Mul", "mul", "y", "x", "w1"),
                node("Add", "add", "b", "x", "w2"),
                node("Relu", "relu", "z", "b")));
        NodeProto add = g.producer("b");
        g.replaceUses("x", "w1"); // edits the Add (and the Mul): the handle is now an old copy
        assertTrue(g.nodes().stream().noneMatch(n -> n == add));
        g.renameInput(add, "w2", "w1");
        assertEquals(List.of("w1", "w1"), g.producer("b").getInputList());
        assertEquals(g.producer("b"), g.current(add));
        g.remove(add);
        assertEquals(List.of("mul", "relu"), g.nodes().stream().map(NodeProto::getName).toList());
    }

    private static NodeProto node(String op, String name, String output, String... inputs) {
        return NodeProto.newBuilder().setOpType(op).setName(name).addAllInput(List.of(inputs)).addOutput(output).build();
    }

    private static ModelProto model(NodeProto... nodes) {
        TypeProto t = TypeProto.newBuilder().setTensorType(TypeProto.Tensor.newBuilder()
                .setElemType(TensorProto.DataType.FLOAT_VALUE)).build();
        GraphProto.Builder g = GraphProto.newBuilder().setName("g").addAllNode(List.of(nodes))
                .addInput(ValueInfoProto.newBuilder().setName("x").setType(t))
                .addOutput(ValueInfoProto.newBuilder().setName("y").setType(t))
                .addOutput(ValueInfoProto.newBuilder().setName("z").setType(t));
        for (String w : new String[] {"w1", "w2"}) {
            g.addInitializer(TensorProto.newBuilder().setName(w).setDataType(TensorProto.DataType.FLOAT_VALUE).addFloatData(1f));
        }
        return ModelProto.newBuilder().setIrVersion(8).setGraph(g)
                .addOpsetImport(OperatorSetIdProto.newBuilder().setVersion(17)).build();
    }
}
