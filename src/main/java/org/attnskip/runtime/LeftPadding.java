package org.attnskip.runtime;

import java.util.Arrays;

/**
 * Inputs for a batch of sequences of different lengths, padded on the left so that every
 * sequence's next token comes out at the last position. Padding slots have attention_mask 0 (the
 * graph hides them from every query) and position 0; each real token's position counts only the
 * real tokens before it, so a sequence gets the same positions as when it runs alone.
 */
public final class LeftPadding {
    private LeftPadding() {
    }

    /** The graph's three token inputs, each [batch][seq]; the mask is [batch][past+seq]. */
    public record Inputs(long[][] inputIds, long[][] attentionMask, long[][] positionIds) {
    }

    public static Inputs prefill(int[][] sequences, int padId) {
        int width = Arrays.stream(sequences).mapToInt(s -> s.length).max().orElse(0);
        int batch = sequences.length;
        long[][] ids = new long[batch][width];
        long[][] mask = new long[batch][width];
        long[][] positions = new long[batch][width];
        for (int b = 0; b < batch; b++) {
            int pad = width - sequences[b].length;
            Arrays.fill(ids[b], 0, pad, padId);
            for (int i = 0; i < sequences[b].length; i++) {
                ids[b][pad + i] = sequences[b][i];
                mask[b][pad + i] = 1;
                positions[b][pad + i] = i;
            }
        }
        return new Inputs(ids, mask, positions);
    }

    /** One new token per sequence after the positions that {@code mask} (the previous run's mask) covers. */
    public static Inputs step(int[] tokens, long[][] mask) {
        int batch = tokens.length;
        long[][] ids = new long[batch][1];
        long[][] nextMask = new long[batch][];
        long[][] positions = new long[batch][1];
        for (int b = 0; b < batch; b++) {
            ids[b][0] = tokens[b];
            nextMask[b] = Arrays.copyOf(mask[b], mask[b].length + 1);
            nextMask[b][mask[b].length] = 1;
            positions[b][0] = Arrays.stream(mask[b]).sum();
        }
        return new Inputs(ids, nextMask, positions);
    }
}
