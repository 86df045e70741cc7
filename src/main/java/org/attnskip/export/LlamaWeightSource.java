package org.attnskip.export;

/**
 * Where a graph builder gets a decoder's weights: each tensor handed out as {@link WeightRows},
 * read (or made) a block of rows at a time when the builder encodes it, and not kept by the
 * source. A builder that streams each tensor to an external data file holds a few row blocks at a
 * time, whatever the model's size. {@link LlamaWeights} is the in-memory source. Values follow
 * {@link LlamaWeights}' conventions ([out][in] matrices, interleaved rotary pairs).
 */
public interface LlamaWeightSource extends AutoCloseable {
    LlamaConfig config();

    /**
     * The tensor {@code part} of layer {@code layer} (ignored for the parts outside the layers);
     * the biases only when the config has them, the classifier only when it is not the embedding.
     */
    WeightRows weight(WeightPart part, int layer);

    /**
     * A matrix part (the projections, the classifier) as the source holds it when that is MatMul's
     * [in][out], the transpose of {@link #weight}; null when the source holds it [out][in]. A reader
     * that multiplies a row block at a time (the reference implementation) uses either as it lies.
     */
    default WeightRows storedTransposed(WeightPart part, int layer) {
        return null;
    }

    /** True when the classifier is the token embedding, so a builder stores it once. */
    boolean classifierIsEmbedding();

    /** [vocab][dim] in one array. */
    default float[] tokenEmbedding() {
        return weight(WeightPart.EMBEDDING, 0).readAll();
    }

    /** One layer in memory. */
    default LlamaWeights.Layer layer(int index) {
        boolean bias = config().qkvBias();
        return new LlamaWeights.Layer(
                all(WeightPart.ATTN_NORM, index),
                all(WeightPart.WQ, index), all(WeightPart.WK, index), all(WeightPart.WV, index), all(WeightPart.WO, index),
                bias ? all(WeightPart.BQ, index) : null, bias ? all(WeightPart.BK, index) : null,
                bias ? all(WeightPart.BV, index) : null,
                all(WeightPart.FFN_NORM, index),
                all(WeightPart.W1, index), all(WeightPart.W2, index), all(WeightPart.W3, index));
    }

    /** [dim] */
    default float[] finalNorm() {
        return weight(WeightPart.FINAL_NORM, 0).readAll();
    }

    /** [vocab][dim]; only asked for when {@link #classifierIsEmbedding()} is false. */
    default float[] classifier() {
        return weight(WeightPart.CLASSIFIER, 0).readAll();
    }

    private float[] all(WeightPart part, int layer) {
        return weight(part, layer).readAll();
    }

    /** Releases open files; reading after this fails. */
    @Override
    default void close() {
    }
}
