package org.attnskip.layout;

/**
 * How far discovery walks from an anchor node before it gives up. Each walk follows one operand
 * through ops that only reshape, cast, scale or mask it; the limits bound a walk on a malformed
 * graph and are generous for every exporter we know.
 */
final class HopLimits {
    /** Stream values between one layer's residual sum and the next layer's residual input (dropped layers, random's Where). */
    static final int RESIDUAL_CHAIN = 4096;
    /** Ops between the attention's query operand and the Q projection: reshape, transpose, rotary, cast, scale. */
    static final int QUERY_TO_PROJECTION = 24;
    /** Ops between a Softmax and its Q·K MatMul, following the first computed operand: scale, mask, cast. */
    static final int SOFTMAX_TO_SCORES = 8;
    /** Levels searched (every computed operand) from a Softmax back to a Q·K MatMul when recognising attention. */
    static final int SCORES_SEARCH_DEPTH = 6;
    /** Casts, Dropout or Identity between a Softmax and the probabilities x V MatMul. */
    static final int SOFTMAX_TO_VALUES = 3;
    /** Reshapes and casts between the normalised hidden state and the projection that reads it. */
    static final int RESHAPES_BEFORE_PROJECTION = 4;
    /** Casts, reshapes and slices between the token-id input and the embedding Gather. */
    static final int INDEX_OPS = 6;

    private HopLimits() {
    }
}
