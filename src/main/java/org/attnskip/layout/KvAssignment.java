package org.attnskip.layout;

import ai.onnx.proto.OnnxMl.NodeProto;
import ai.onnx.proto.OnnxMl.TensorProto;
import ai.onnx.proto.OnnxMl.TensorShapeProto;
import ai.onnx.proto.OnnxMl.ValueInfoProto;
import org.attnskip.onnx.BadInputException;
import org.attnskip.onnx.DataFlow;
import org.attnskip.onnx.Graph;

import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;

/**
 * Which graph inputs and outputs are each layer's KV cache, and how the cache is laid out. Inputs
 * and outputs are assigned by data flow: a past belongs to the first attention that reads it, a
 * present to the attention that writes it or to the layer whose past it extends.
 */
final class KvAssignment {
    private final Graph g;
    private final DataFlow flow;
    private final ParentWalk parents;
    private final List<AttentionCores.Core> cores;
    private final ModelInputs io;
    private final Map<NodeProto, Integer> coreIndex = new IdentityHashMap<>();
    /** The cores plus, for unfused attention, the probabilities x V MatMul, where V reaches the layer. */
    private final Map<NodeProto, Integer> readerIndex;
    private final Map<Integer, List<String>> inputs;
    private final Map<Integer, List<String>> outputs;

    KvAssignment(Graph g, DataFlow flow, ParentWalk parents, List<AttentionCores.Core> cores, ModelInputs io) {
        this.g = g;
        this.flow = flow;
        this.parents = parents;
        this.cores = cores;
        this.io = io;
        for (int i = 0; i < cores.size(); i++) {
            coreIndex.put(cores.get(i).node(), i);
        }
        readerIndex = new IdentityHashMap<>(coreIndex);
        for (int i = 0; i < cores.size(); i++) {
            NodeProto pv = g.producer(cores.get(i).branchOutput());
            if (pv != null) {
                readerIndex.put(pv, i);
            }
        }
        inputs = assignInputs();
        outputs = assignOutputs();
    }

    List<String> inputs(int layer) {
        return inputs.getOrDefault(layer, List.of());
    }

    List<String> outputs(int layer) {
        return outputs.getOrDefault(layer, List.of());
    }

    KvCacheIo cache(int layer) {
        return kvCache(inputs(layer), outputs(layer));
    }

    /**
     * Floating-point runtime inputs are KV caches; each belongs to the first layer whose attention
     * reads it. An input that reaches that attention's queries enters the residual stream instead
     * (random's noise): it is no cache and belongs to no layer.
     */
    private Map<Integer, List<String>> assignInputs() {
        Map<Integer, List<String>> result = new HashMap<>();
        for (ValueInfoProto in : g.runtimeInputs()) {
            if (io.isModelInput(in.getName()) || !isFloating(in)) {
                continue;
            }
            int first = Integer.MAX_VALUE;
            Set<String> reached = flow.forwardValues(List.of(in.getName()));
            for (String v : reached) {
                NodeProto p = g.producer(v);
                Integer idx = p == null ? null : readerIndex.get(p);
                if (idx != null) {
                    first = Math.min(first, idx);
                }
            }
            if (first == Integer.MAX_VALUE) {
                throw new BadInputException("input '" + in.getName() + "' looks like a KV cache but no attention reads it");
            }
            String query = parents.queryInput(cores.get(first));
            if (query != null && reached.contains(query)) {
                continue;
            }
            result.computeIfAbsent(first, k -> new ArrayList<>()).add(in.getName());
        }
        return result;
    }

    /**
     * A present output made by an attention op belongs to its layer. One computed by plain ops
     * (concat of past and new K/V) belongs to the highest layer whose past input it reads, or
     * without one, to the layer after the last attention it depends on. The past decides first
     * because freeze computes a layer's present from an earlier layer's stream.
     */
    private Map<Integer, List<String>> assignOutputs() {
        Map<String, Integer> pastLayer = new HashMap<>();
        inputs.forEach((layer, names) -> names.forEach(n -> pastLayer.put(n, layer)));
        Map<Integer, List<String>> result = new HashMap<>();
        for (ValueInfoProto out : g.outputs()) {
            String name = out.getName();
            if (name.equals(io.logits()) || declaredRankBelowFour(out) && !StaticCache.isCacheWrite(g, name)) {
                continue; // a cache is [B, H, P, D] or stacked [2, B, H, P, D]; [B, S, D] is an exposed hidden state
                          // unless TensorScatter wrote it into a static [B, max_len, kv_hidden] buffer
            }
            NodeProto direct = g.producer(name);
            Integer layer = direct == null ? null : coreIndex.get(direct);
            if (layer == null) {
                layer = flow.backwardValues(List.of(name)).stream().map(pastLayer::get)
                        .filter(Objects::nonNull).max(Integer::compare).orElse(null);
            }
            if (layer == null) {
                int last = -1;
                for (NodeProto n : flow.backwardNodes(List.of(name), Set.of())) {
                    Integer idx = coreIndex.get(n);
                    if (idx != null) {
                        last = Math.max(last, idx);
                    }
                }
                layer = last + 1;
            }
            if (layer >= cores.size()) {
                throw new BadInputException("output '" + name + "' is neither the logits nor a layer's KV cache");
            }
            result.computeIfAbsent(layer, k -> new ArrayList<>()).add(name);
        }
        return result;
    }

    private static boolean declaredRankBelowFour(ValueInfoProto v) {
        return v.getType().getTensorType().hasShape() && v.getType().getTensorType().getShape().getDimCount() < 4;
    }

    private KvCacheIo kvCache(List<String> in, List<String> out) {
        if (in.isEmpty() && out.isEmpty()) {
            return KvCacheIo.none();
        }
        List<String> ordered = orderKeyFirst(in);
        List<String> orderedOut = orderKeyFirst(out);
        String sample = !ordered.isEmpty() ? ordered.get(0) : orderedOut.get(0);
        ValueInfoProto info = g.valueInfo(sample).orElse(null);
        List<TensorShapeProto.Dimension> dims = info == null ? List.of() : info.getType().getTensorType().getShape().getDimList();
        int count = Math.max(ordered.size(), orderedOut.size());
        boolean stacked = count == 1 && dims.size() == 5 && dims.get(0).hasDimValue() && dims.get(0).getDimValue() == 2;
        long perToken = 1;
        for (TensorShapeProto.Dimension dim : dims) {
            if (dim.hasDimValue()) {
                perToken *= dim.getDimValue();
            }
        }
        if (dims.isEmpty()) {
            perToken = 0;
        } else if (!stacked) {
            perToken *= count;
        }
        int elemType = info == null ? 0 : info.getType().getTensorType().getElemType();
        return new KvCacheIo(ordered, orderedOut, stacked ? KvCacheIo.Layout.STACKED : KvCacheIo.Layout.SEPARATE,
                axes(dims, stacked), elemType, perToken);
    }

    /** Key before value: a name hint only, the pair is the pair either way. */
    private static List<String> orderKeyFirst(List<String> names) {
        List<String> copy = new ArrayList<>(names);
        copy.sort((a, b) -> Boolean.compare(a.toLowerCase().contains("value"), b.toLowerCase().contains("value")));
        return List.copyOf(copy);
    }

    private static List<String> axes(List<TensorShapeProto.Dimension> dims, boolean stacked) {
        List<String> names = new ArrayList<>(Collections.nCopies(dims.size(), "?"));
        int start = 0;
        if (stacked) {
            names.set(0, "kv");
            start = 1;
        }
        List<Integer> symbolic = new ArrayList<>();
        for (int d = start; d < dims.size(); d++) {
            if (!dims.get(d).hasDimValue()) {
                symbolic.add(d);
            }
        }
        if (symbolic.size() != 2) {
            return List.copyOf(names);
        }
        int batch = symbolic.get(0);
        int seq = symbolic.get(1);
        names.set(batch, "batch");
        names.set(seq, "seq");
        List<Integer> statics = new ArrayList<>();
        for (int d = start; d < dims.size(); d++) {
            if (d != batch && d != seq) {
                statics.add(d);
            }
        }
        if (statics.size() == 2) {
            names.set(statics.get(0), "heads");
            names.set(statics.get(1), "head_dim");
        }
        return List.copyOf(names);
    }

    private static boolean isFloating(ValueInfoProto v) {
        int t = v.getType().getTensorType().getElemType();
        return t == TensorProto.DataType.FLOAT_VALUE || t == TensorProto.DataType.FLOAT16_VALUE
                || t == TensorProto.DataType.BFLOAT16_VALUE || t == TensorProto.DataType.DOUBLE_VALUE;
    }
}
