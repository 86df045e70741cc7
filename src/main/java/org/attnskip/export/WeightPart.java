package org.attnskip.export;

/** The weight tensors of a Llama-family decoder, as a {@link LlamaWeightSource} hands them out. */
public enum WeightPart {
    /** [vocab][dim] */
    EMBEDDING(false),
    /** [dim] */
    ATTN_NORM(true),
    /** [dim][dim] */
    WQ(true),
    /** [kvDim][dim] */
    WK(true),
    /** [kvDim][dim] */
    WV(true),
    /** [dim][dim] */
    WO(true),
    /** [dim], Qwen2 only */
    BQ(true),
    /** [kvDim], Qwen2 only */
    BK(true),
    /** [kvDim], Qwen2 only */
    BV(true),
    /** [dim] */
    FFN_NORM(true),
    /** [hidden][dim] (gate) */
    W1(true),
    /** [dim][hidden] (down) */
    W2(true),
    /** [hidden][dim] (up) */
    W3(true),
    /** [dim] */
    FINAL_NORM(false),
    /** [vocab][dim]; absent when the classifier is the embedding */
    CLASSIFIER(false);

    /** True for the parts every layer has its own of. */
    public final boolean perLayer;

    WeightPart(boolean perLayer) {
        this.perLayer = perLayer;
    }

    /** Rows and columns of this part for a model of shape {@code c}; vectors are one row. */
    public int[] shape(LlamaConfig c) {
        return switch (this) {
            case EMBEDDING, CLASSIFIER -> new int[] {c.vocabSize(), c.dim()};
            case ATTN_NORM, FFN_NORM, FINAL_NORM, BQ -> new int[] {1, c.dim()};
            case BK, BV -> new int[] {1, c.kvDim()};
            case WQ, WO -> new int[] {c.dim(), c.dim()};
            case WK, WV -> new int[] {c.kvDim(), c.dim()};
            case W1, W3 -> new int[] {c.hiddenDim(), c.dim()};
            case W2 -> new int[] {c.dim(), c.hiddenDim()};
        };
    }
}
