package org.attnskip.layout;

import ai.onnx.proto.OnnxMl.NodeProto;

/**
 * A layer's MLP sub-block, located by its residual add.
 *
 * @param norm        the post-attention norm node (may be the attention's fused Skip*Norm)
 * @param residualAdd the Add or Skip*Norm that adds the MLP output to the stream
 * @param residualSum the stream leaving the layer, or "" when the final norm fuses the add and
 *                    does not expose the sum
 */
public record MlpBlock(NodeProto norm, NodeProto residualAdd, String residualSum) {
}
