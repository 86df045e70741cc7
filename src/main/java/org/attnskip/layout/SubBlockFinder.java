package org.attnskip.layout;

import ai.onnx.proto.OnnxMl.NodeProto;
import org.attnskip.onnx.BadInputException;
import org.attnskip.onnx.DataFlow;
import org.attnskip.onnx.Graph;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashSet;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A layer's two sub-blocks, found from its attention anchor: forward from the attention's result
 * to the residual add that folds it into the stream, back from there to the norm, and forward from
 * the residual sum to the MLP's residual add. Only nodes on those walks are looked at.
 */
final class SubBlockFinder {
    private final Graph g;
    private final DataFlow flow;
    private final ParentWalk parents;
    /** Topological position of each node: where walks find several candidates, the first one wins. */
    private final Map<NodeProto, Integer> position = new IdentityHashMap<>();

    SubBlockFinder(Graph g, DataFlow flow, ParentWalk parents) {
        this.g = g;
        this.flow = flow;
        this.parents = parents;
        List<NodeProto> nodes = g.nodes();
        for (int i = 0; i < nodes.size(); i++) {
            position.put(nodes.get(i), i);
        }
    }

    LayerLayout layer(int i, AttentionCores.Core core, List<String> kvIn, List<String> kvOut, KvCacheIo kv) {
        // 1. The residual add: the first add that combines the attention branch with a value not derived from it.
        Set<String> branch = flow.forwardValues(List.of(core.branchOutput()));
        NodeProto add = null;
        String branchAtAdd = null;
        String residualIn = null;
        for (String v : branch) {
            for (NodeProto n : g.consumers(v)) {
                if (!ResidualChain.isResidualAdd(n) || (add != null && position.get(n) >= position.get(add))) {
                    continue;
                }
                String a = n.getInput(0);
                String b = n.getInput(1);
                if (ParentWalk.isFixed(g, a) || ParentWalk.isFixed(g, b) || branch.contains(a) == branch.contains(b)) {
                    continue;
                }
                add = n;
                branchAtAdd = branch.contains(a) ? a : b;
                residualIn = QdqPairs.source(g, branch.contains(a) ? b : a); // the stream, not its quantized copy
            }
        }
        if (add == null) {
            throw new BadInputException("layer " + i + ": no residual add consumes the attention output");
        }
        String residualSum = ResidualChain.sumOf(add);

        // 2. The input norm: walk back from the attention's query input to the hidden state the projections read.
        String normOutput = parents.projectionInput(i, core);
        NodeProto norm = g.producer(normOutput);
        boolean normShared = norm != null && (ResidualChain.isSkipNorm(norm)
                || norm.getOpType().equals("EmbedLayerNormalization"));

        // 3. The sub-block's nodes: between the stream (or the fused norm) and the add, plus the KV plumbing.
        //    A fused norm is not one of them: it is also the previous layer's residual add (or the embedding).
        Set<String> starts = new HashSet<>(List.of(residualIn, normOutput));
        starts.addAll(kvIn);
        Set<String> downstream = flow.forwardValues(starts);
        List<String> ends = new ArrayList<>(List.of(branchAtAdd));
        ends.addAll(kvOut);
        List<NodeProto> nodes = new ArrayList<>();
        for (NodeProto n : flow.backwardNodes(ends, Set.of(residualIn))) {
            if (n != add && n != norm && n.getOutputList().stream().anyMatch(downstream::contains)) {
                nodes.add(n);
            }
        }
        if (norm != null && !normShared) {
            nodes.add(norm);
        }
        nodes.sort(Comparator.comparing(position::get));
        boolean unfused = core.kind() == AttentionKind.UNFUSED;
        AttentionBlock attention = new AttentionBlock(core.kind(), core.node(), norm, normOutput, normShared,
                List.copyOf(nodes), branchAtAdd, add, residualSum,
                unfused ? parents.scoresMatMul(core.node()) : null, unfused ? parents.valuesMatMul(core) : null,
                parents.projectionKind(i, core));
        return new LayerLayout(i, residualIn, attention, mlp(i, add, residualSum), kv);
    }

    /** The MLP sub-block: the first residual add after the attention's that adds to its sum a value computed from it. */
    private MlpBlock mlp(int layer, NodeProto attnAdd, String mid) {
        if (mid.isEmpty()) {
            throw new BadInputException("layer " + layer + ": the attention's residual sum is not exposed by "
                    + attnAdd.getOpType());
        }
        Set<String> afterAdd = flow.forwardValues(attnAdd.getOutputList().stream().filter(s -> !s.isEmpty()).toList());
        NodeProto mlpAdd = null;
        Set<String> midAliases = QdqPairs.aliases(g, mid);
        for (NodeProto n : QdqPairs.readers(g, mid)) {
            if (!ResidualChain.isResidualAdd(n) || (mlpAdd != null && position.get(n) >= position.get(mlpAdd))) {
                continue;
            }
            String a = n.getInput(0);
            String b = n.getInput(1);
            String other = midAliases.contains(a) ? b : midAliases.contains(b) ? a : null;
            if (other != null && afterAdd.contains(other) && !midAliases.contains(other)) {
                mlpAdd = n;
            }
        }
        if (mlpAdd == null) {
            throw new BadInputException("layer " + layer + ": no residual add consumes the MLP output");
        }
        NodeProto norm = ResidualChain.isSkipNorm(attnAdd) ? attnAdd : firstConsumer(mid, mlpAdd);
        return new MlpBlock(norm, mlpAdd, ResidualChain.sumOf(mlpAdd));
    }

    private NodeProto firstConsumer(String value, NodeProto except) {
        for (NodeProto c : QdqPairs.readers(g, value)) {
            if (c != except) {
                return c;
            }
        }
        return null;
    }
}
