package org.attnskip.rewrite;

import ai.onnx.proto.OnnxMl.AttributeProto;
import ai.onnx.proto.OnnxMl.FunctionProto;
import ai.onnx.proto.OnnxMl.GraphProto;
import ai.onnx.proto.OnnxMl.ModelProto;
import ai.onnx.proto.OnnxMl.NodeProto;
import ai.onnx.proto.OnnxMl.OperatorSetIdProto;
import ai.onnx.proto.OnnxMl.TensorProto;
import org.attnskip.onnx.Attributes;
import org.attnskip.onnx.Tensors;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Predicate;

/**
 * Re-wraps an attnskip unfused export the way function-preserving exporters (torch.onnx's dynamo
 * exporter, onnxscript) write a decoder: every layer is a call to one shared local function
 * {@code DecoderLayer}, whose attention sub-block is itself a call to a nested local function
 * {@code SelfAttention}. Weights stay graph initializers passed in as inputs; the layer's small
 * constants become Constant nodes inside the bodies, the RMSNorm epsilons reading the caller's
 * attribute {@code epsilon} by reference ({@code ref_attr_name}; even layers give it, odd ones
 * take the function's default). Test-only.
 */
final class FunctionWrappedLayers {
    static final String DOMAIN = "attnskip.test";
    private static final long IR_WITH_ATTRIBUTE_DEFAULTS = 9;

    private FunctionWrappedLayers() {
    }

    /** The export with its layers 0..layers-1 (nodes named "/model/layers.{i}/...") replaced by function calls. */
    static ModelProto wrap(ModelProto exported, int layers) {
        GraphProto g = exported.getGraph();
        Map<String, TensorProto> initializers = new HashMap<>();
        g.getInitializerList().forEach(t -> initializers.put(t.getName(), t));

        List<List<NodeProto>> bodies = new ArrayList<>();
        float epsilon = Float.NaN;
        for (int i = 0; i < layers; i++) {
            String prefix = "/model/layers." + i + "/";
            List<NodeProto> body = new ArrayList<>();
            for (TensorProto t : g.getInitializerList()) {
                if (t.getName().startsWith(prefix)) {
                    if (t.getName().endsWith("/eps")) {
                        epsilon = Tensors.floats(t, null)[0];
                        body.add(constantNode(t.getName(), AttributeProto.newBuilder().setName("value_float")
                                .setType(AttributeProto.AttributeType.FLOAT).setRefAttrName("epsilon").build()));
                    } else {
                        body.add(constantNode(t.getName(), Attributes.tensorAttr("value", t.toBuilder().clearName().build())));
                    }
                }
            }
            g.getNodeList().stream().filter(n -> n.getName().startsWith(prefix)).forEach(body::add);
            bodies.add(body);
            if (i > 0) {
                requireSameShape(bodies.get(0), body, i);
            }
        }

        // the layer function, from layer 0; its I/O relative to the main graph
        Set<String> graphOutputs = new HashSet<>();
        g.getOutputList().forEach(v -> graphOutputs.add(v.getName()));
        List<NodeProto> layer0 = bodies.get(0);
        Set<NodeProto> outside = new HashSet<>(g.getNodeList());
        outside.removeAll(layer0);
        Signature layerSig = Signature.of(layer0, outside, graphOutputs);

        // the attention sub-block inside it becomes the nested function
        Predicate<NodeProto> inAttention = n -> n.getName().startsWith("/model/layers.0/self_attn/");
        List<NodeProto> attention = layer0.stream().filter(inAttention).toList();
        List<NodeProto> rest = layer0.stream().filter(inAttention.negate()).toList();
        Signature attnSig = Signature.of(attention, new HashSet<>(rest), new HashSet<>(layerSig.outputs));
        NodeProto attentionCall = NodeProto.newBuilder().setOpType("SelfAttention").setDomain(DOMAIN)
                .setName("/model/layers.0/self_attn").addAllInput(attnSig.inputs).addAllOutput(attnSig.outputs)
                .addAttribute(AttributeProto.newBuilder().setName("softmax_axis").setType(AttributeProto.AttributeType.INT)
                        .setRefAttrName("attention_axis"))
                .build();
        List<NodeProto> layerBody = new ArrayList<>();
        boolean placed = false; // the sub-block's constants come first in the body, so they say nothing about order
        for (NodeProto n : layer0) {
            if (inAttention.test(n)) {
                if (!placed && !n.getOpType().equals("Constant")) { // where the sub-block's first computing node was
                    layerBody.add(attentionCall);
                    placed = true;
                }
            } else {
                layerBody.add(n);
            }
        }
        List<NodeProto> attentionBody = attention.stream().map(FunctionWrappedLayers::softmaxAxisByReference).toList();

        FunctionProto attentionFn = function("SelfAttention", attnSig, attentionBody, List.of("softmax_axis"), List.of());
        FunctionProto layerFn = function("DecoderLayer", layerSig, layerBody, List.of(),
                List.of(Attributes.floatAttr("epsilon", epsilon), Attributes.intAttr("attention_axis", -1)));

        // the main graph: each layer's nodes give way to one call, whose actual I/O sit where layer 0's formals do
        Map<NodeProto, Integer> layerOf = new HashMap<>();
        for (int i = 0; i < layers; i++) {
            for (NodeProto n : bodies.get(i)) {
                layerOf.put(n, i);
            }
        }
        GraphProto.Builder out = g.toBuilder().clearNode().clearInitializer();
        g.getInitializerList().stream().filter(t -> !t.getName().startsWith("/model/layers.")).forEach(out::addInitializer);
        Set<Integer> called = new HashSet<>();
        for (NodeProto n : g.getNodeList()) {
            Integer i = layerOf.get(n);
            if (i == null) {
                out.addNode(n);
            } else if (called.add(i)) {
                NodeProto.Builder call = NodeProto.newBuilder().setOpType("DecoderLayer").setDomain(DOMAIN)
                        .setName("/model/layers." + i);
                layerSig.inputs.forEach(f -> call.addInput(actual(layer0, bodies.get(i), f, true)));
                layerSig.outputs.forEach(f -> call.addOutput(actual(layer0, bodies.get(i), f, false)));
                if (i % 2 == 0) {
                    call.addAttribute(Attributes.floatAttr("epsilon", epsilon));
                }
                out.addNode(call);
            }
        }
        return exported.toBuilder().setIrVersion(Math.max(exported.getIrVersion(), IR_WITH_ATTRIBUTE_DEFAULTS))
                .addOpsetImport(OperatorSetIdProto.newBuilder().setDomain(DOMAIN).setVersion(1))
                .setGraph(out).addFunctions(layerFn).addFunctions(attentionFn).build();
    }

    /** A function's formal inputs (read, not made, in order of first read) and outputs (read outside, in order made). */
    private record Signature(List<String> inputs, List<String> outputs) {
        static Signature of(List<NodeProto> members, Set<NodeProto> others, Set<String> scopeOutputs) {
            Set<String> made = new HashSet<>();
            members.forEach(n -> made.addAll(n.getOutputList()));
            Set<String> inputs = new LinkedHashSet<>();
            for (NodeProto n : members) {
                n.getInputList().stream().filter(v -> !v.isEmpty() && !made.contains(v)).forEach(inputs::add);
            }
            Set<String> readOutside = new HashSet<>(scopeOutputs);
            others.forEach(n -> readOutside.addAll(n.getInputList()));
            List<String> outputs = new ArrayList<>();
            for (NodeProto n : members) {
                n.getOutputList().stream().filter(readOutside::contains).forEach(outputs::add);
            }
            return new Signature(List.copyOf(inputs), outputs);
        }
    }

    /** Layer i's value at the place (node, slot) where layer 0 first reads (or makes) {@code formal}. */
    private static String actual(List<NodeProto> layer0, List<NodeProto> layerI, String formal, boolean read) {
        for (int j = 0; j < layer0.size(); j++) {
            List<String> slots = read ? layer0.get(j).getInputList() : layer0.get(j).getOutputList();
            int s = slots.indexOf(formal);
            if (s >= 0) {
                return (read ? layerI.get(j).getInputList() : layerI.get(j).getOutputList()).get(s);
            }
        }
        throw new IllegalStateException("no slot for " + formal);
    }

    private static void requireSameShape(List<NodeProto> layer0, List<NodeProto> layerI, int i) {
        if (layer0.size() != layerI.size()) {
            throw new IllegalStateException("layer " + i + " has " + layerI.size() + " nodes, layer 0 " + layer0.size());
        }
        for (int j = 0; j < layer0.size(); j++) {
            NodeProto a = layer0.get(j);
            NodeProto b = layerI.get(j);
            if (!a.getOpType().equals(b.getOpType()) || !a.getAttributeList().equals(b.getAttributeList())) {
                throw new IllegalStateException("layer " + i + " node " + j + " differs from layer 0's");
            }
        }
    }

    private static NodeProto softmaxAxisByReference(NodeProto n) {
        if (!n.getOpType().equals("Softmax")) {
            return n;
        }
        return n.toBuilder().clearAttribute().addAttribute(AttributeProto.newBuilder().setName("axis")
                .setType(AttributeProto.AttributeType.INT).setRefAttrName("softmax_axis")).build();
    }

    private static NodeProto constantNode(String output, AttributeProto value) {
        return NodeProto.newBuilder().setOpType("Constant").setName(output + "/Constant").addOutput(output)
                .addAttribute(value).build();
    }

    private static FunctionProto function(String name, Signature sig, List<NodeProto> body, List<String> attributes,
                                          List<AttributeProto> defaults) {
        return FunctionProto.newBuilder().setName(name).setDomain(DOMAIN).addAllInput(sig.inputs)
                .addAllOutput(sig.outputs).addAllNode(body).addAllAttribute(attributes).addAllAttributeProto(defaults)
                .addOpsetImport(OperatorSetIdProto.newBuilder().setDomain("").setVersion(org.attnskip.export.LlamaOnnxExporter.OPSET))
                .addOpsetImport(OperatorSetIdProto.newBuilder().setDomain(DOMAIN).setVersion(1))
                .build();
    }
}
