package org.attnskip.export;

/**
 * Where a graph builder gets a decoder's weights: the embedding, then each layer, then the final
 * norm and classifier, each read or made when asked for and not kept by the source. A builder that
 * drops each layer once it has declared its initializers (into an external data file) holds one
 * layer at a time, whatever the model's size. {@link LlamaWeights} is the in-memory source.
 * Arrays follow {@link LlamaWeights}' conventions ([out][in] matrices, interleaved rotary pairs).
 */
public interface LlamaWeightSource extends AutoCloseable {
    LlamaConfig config();

    /** [vocab][dim] */
    float[] tokenEmbedding();

    LlamaWeights.Layer layer(int index);

    /** [dim] */
    float[] finalNorm();

    /** True when the classifier is the token embedding, so a builder stores it once. */
    boolean classifierIsEmbedding();

    /** [vocab][dim]; only asked for when {@link #classifierIsEmbedding()} is false. */
    float[] classifier();

    /** Releases open files; reading after this fails. */
    @Override
    default void close() {
    }
}
