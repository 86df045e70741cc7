package org.attnskip.layout;

import java.util.List;

/**
 * What a decoder-only LLM graph looks like: its layers and, for each, where the residual stream
 * enters, its attention and MLP sub-blocks and its KV cache. This is the one description every
 * rewrite pass works from, so that no pass needs to know which exporter made the graph.
 *
 * @param dialect      a short label of the exporter family, derived from the operators found
 * @param hiddenSize   0 where it cannot be determined (so for the other sizes)
 * @param logits       the logits output, or the last hidden state when {@code hasLmHead} is false
 * @param logitsToKeep the int64 input that asks for the last n positions' logits (0: all), or null
 *                     when the graph has none (see {@link LogitsToKeepInput})
 */
public record DecoderLayout(
        String dialect,
        int hiddenSize,
        int numHeads,
        int numKvHeads,
        int headDim,
        int vocabSize,
        String inputIds,
        String attentionMask,
        String positionIds,
        String logits,
        boolean hasLmHead,
        List<LayerLayout> layers,
        long params,
        String logitsToKeep) {

    public int numLayers() {
        return layers.size();
    }

    public LayerLayout layer(int i) {
        return layers.get(i);
    }

    /** Bytes of KV cache one token occupies, summed over all layers. */
    public long kvBytesPerToken() {
        long total = 0;
        for (LayerLayout l : layers) {
            total += l.kv().elementsPerToken() * org.attnskip.onnx.Tensors.elementSize(Math.max(l.kv().elementType(), 1));
        }
        return total;
    }
}
