package org.attnskip.layout;

/**
 * One decoder layer.
 *
 * @param residualIn the residual stream entering the layer (h_in)
 */
public record LayerLayout(int index, String residualIn, AttentionBlock attention, MlpBlock mlp, KvCache kv) {
}
