package org.attnskip.reference;

import org.attnskip.export.LlamaConfig;
import org.attnskip.export.LlamaWeightSource;

import java.util.ArrayList;
import java.util.List;

/**
 * The plain Java forward pass of a Llama-family decoder: the oracle that the ONNX exporter and the
 * graph rewrites are checked against. It follows llama2.c's run.c step by step (rmsnorm, matmul,
 * interleaved RoPE, grouped-query attention, SwiGLU, KV cache) and, like run.c, computes and
 * accumulates in float, in the same order, so that greedy decoding reproduces llama2.c's output.
 * On top of run.c it knows Llama 3 rope scaling, Qwen2's q/k/v biases, and the manipulations of
 * MANIPULATIONS.md ({@link Manipulation}).
 *
 * <p>The blocks are {@link LlamaBlocks}, the manipulations {@link ManipulatedPasses}. Rotary embedding: for the pair (2j, 2j+1) of each head (head size hs), the inverse frequency
 * is {@code 1.0f / (float) pow(theta, (float) (2j) / hs)} (then Llama 3 scaling, if any), the angle
 * is the float product {@code pos * invFreq}, and the pair is rotated by (float) cos / sin of it.
 *
 * <p>Not thread-safe: {@link #forward} keeps a KV cache. The analysis methods use their own caches.
 */
public final class ReferenceLlama {
    private final LlamaBlocks blocks;
    private final LlamaConfig config;
    private final ManipulatedPasses manipulated;
    private LlamaBlocks.KvRows cache;

    /**
     * Over weights in memory, or read where they lie a row block at a time (a llama2.c checkpoint
     * opened with {@code Llama2cCheckpoint.open}, an exported directory opened with
     * {@code ExportedWeights.open}): then the heap holds one block, and each pass over a sequence
     * ({@link #logitsAllPositions} without a manipulation, with drop or switch, and
     * {@link #residualStreams}) reads every weight once. The caller closes the source.
     */
    public ReferenceLlama(LlamaWeightSource weights) {
        this.blocks = new LlamaBlocks(weights);
        this.config = weights.config();
        this.manipulated = new ManipulatedPasses(blocks);
        this.cache = blocks.rows(0);
    }

    public LlamaConfig config() {
        return config;
    }

    // ---------------------------------------------------------------- decoding, as run.c does it

    /**
     * One decoding step, like run.c's forward: the logits after token at position pos, attending to
     * the tokens given at positions 0..pos-1 since the last {@link #reset()}. Steps must come in order.
     */
    public float[] forward(int token, int pos) {
        if (pos < 0 || pos > cache.filled) {
            throw new IllegalArgumentException("position " + pos + ": forward() must be called for positions 0, 1, 2, ... in order"
                    + " (the cache holds " + cache.filled + ")");
        }
        cache.ensure(pos + 1);
        float[] x = blocks.embed(token);
        for (int l = 0; l < blocks.layerCount; l++) {
            blocks.attention(l, x, pos, cache);
            blocks.feedForward(l, x);
        }
        cache.filled = pos + 1;
        return blocks.classify(x);
    }

    /** Forgets the KV cache of {@link #forward}. */
    public void reset() {
        cache = blocks.rows(0);
    }

    /**
     * run.c's greedy generation ({@code -t 0 -n steps}): feeds promptIds (BOS first) one by one, then
     * the argmax token (the lowest id on ties), for at most steps positions (prompt tokens included;
     * steps <= 0 or > seq_len means seq_len), and stops early when the next token is BOS.
     *
     * @return the token sequence run.c fed or emitted: promptIds followed by the generated ids, the
     * final BOS excluded; at most steps + 1 ids
     */
    public int[] generateGreedy(int[] promptIds, int steps) {
        if (promptIds.length == 0) {
            throw new IllegalArgumentException("the prompt needs at least one token (BOS)");
        }
        if (steps <= 0 || steps > config.seqLen()) {
            steps = config.seqLen();
        }
        int stopId = config.bosId() >= 0 ? config.bosId() : 1;
        reset();
        List<Integer> sequence = new ArrayList<>();
        int token = promptIds[0];
        sequence.add(token);
        for (int pos = 0; pos < steps; pos++) {
            float[] logits = forward(token, pos);
            int next = pos < promptIds.length - 1 ? promptIds[pos + 1] : argmax(logits);
            if (next == stopId) {
                break;
            }
            sequence.add(next);
            token = next;
        }
        return sequence.stream().mapToInt(Integer::intValue).toArray();
    }

    /** The index of the largest value, the first one on ties (run.c's sample_argmax). */
    public static int argmax(float[] values) {
        int best = 0;
        for (int i = 1; i < values.length; i++) {
            if (values[i] > values[best]) {
                best = i;
            }
        }
        return best;
    }

    // ---------------------------------------------------------------- analysis

    /** The logits at every position of a normal pass: [S][vocab]. */
    public float[][] logitsAllPositions(int[] tokens) {
        return logitsAllPositions(tokens, Manipulation.NONE);
    }

    /**
     * The logits at every position t, where t is scored as if it were the last token of
     * tokens[0..t] under the manipulation: [S][vocab]. For drop, freeze and random this equals
     * token-by-token decoding with a KV cache whose entries for the manipulated layers are what the
     * manipulation makes of each previous token. For random, the noise for position t is row t of
     * {@link NoiseDraw#draw}(noise, seed, S, dim), which is the same row as for any shorter prefix.
     *
     * <p>So row t is what a rewritten graph outputs at its LAST position when given tokens[0..t].
     * A single full-sequence pass of such a graph only matches at its last position for freeze and
     * random (its earlier positions see the manipulation applied to themselves); for drop, switch and
     * the normal model every position matches.
     */
    public float[][] logitsAllPositions(int[] tokens, Manipulation manipulation) {
        return manipulated.logits(tokens, manipulation);
    }

    /**
     * The residual stream of a normal pass: [l][t] is the hidden state of position t at the input
     * of layer l, and [L][t] the output of the last layer (before the final norm). [L+1][S][dim].
     */
    public float[][][] residualStreams(int[] tokens) {
        return manipulated.residualStreams(tokens);
    }
}
