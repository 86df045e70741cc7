package org.attnskip.layout;

import ai.onnx.proto.OnnxMl.NodeProto;

import java.util.List;

/**
 * A layer's attention sub-block: norm, attention, output projection, and the residual add that
 * folds its result back into the stream.
 *
 * @param core             the attention node, or the Softmax of an unfused attention
 * @param norm             the node computing the input norm; for a fused norm it is shared with the
 *                         previous residual add (see {@link #normSharedWithPreviousAdd})
 * @param normOutput       the normalised hidden state the Q/K/V projections read
 * @param nodes            every node of the sub-block between the residual stream and the residual add
 * @param branchOutput     the attention branch's value where it meets the residual add
 * @param residualAdd      an Add, or a SkipLayerNormalization / SkipSimplifiedLayerNormalization
 * @param residualSum      the stream after the add (the Add output, or output 3 of a Skip*Norm)
 * @param scoresMatMul     for UNFUSED attention, the Q x K^T MatMul; null when an op hides it
 * @param valuesMatMul     for UNFUSED attention, the probabilities x V MatMul; null when an op hides it
 *                         or a freeze rewrite has split it
 * @param projection       how the Q (or packed QKV) projection stores its weight
 */
public record AttentionBlock(AttentionKind kind, NodeProto core, NodeProto norm, String normOutput,
                             boolean normSharedWithPreviousAdd, List<NodeProto> nodes,
                             String branchOutput, NodeProto residualAdd, String residualSum,
                             NodeProto scoresMatMul, NodeProto valuesMatMul, ProjectionKind projection) {
}
