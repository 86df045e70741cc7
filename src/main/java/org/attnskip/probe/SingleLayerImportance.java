package org.attnskip.probe;

import org.attnskip.reference.Vectors;

import java.util.ArrayList;
import java.util.List;

/**
 * How much each layer turns the residual stream, from exposed streams: for layer i,
 * 1 - cos(input, output) of its attention sub-block (input = the stream entering layer i, output =
 * the stream after its attention residual add; LLM-Drop's attention-layer score) and of the whole
 * block (input = entering layer i, output = entering layer i+1; ShortGPT's Block Influence), each
 * averaged over every token position of every prompt. Near 0: the layer barely changes the stream.
 */
public final class SingleLayerImportance {
    /** attention is NaN where the graph did not expose the post-attention stream. */
    public record Layer(int index, double attention, double block) {
    }

    private SingleLayerImportance() {
    }

    public static List<Layer> measure(List<HiddenStateRunner.Pass> passes) {
        if (passes.isEmpty()) {
            throw new IllegalArgumentException("importance needs at least one prompt");
        }
        int layers = passes.get(0).layers();
        List<Layer> out = new ArrayList<>();
        for (int i = 0; i < layers; i++) {
            double attention = 0;
            double block = 0;
            long tokens = 0;
            boolean hasAttention = true;
            for (HiddenStateRunner.Pass p : passes) {
                float[][] in = p.hidden()[i];
                float[][] next = p.hidden()[i + 1];
                float[][] afterAttention = p.attentionOut()[i];
                hasAttention &= afterAttention != null;
                for (int t = 0; t < in.length; t++) {
                    block += 1 - Vectors.cosine(in[t], next[t]);
                    if (afterAttention != null) {
                        attention += 1 - Vectors.cosine(in[t], afterAttention[t]);
                    }
                    tokens++;
                }
            }
            out.add(new Layer(i, hasAttention ? attention / tokens : Double.NaN, block / tokens));
        }
        return out;
    }
}
