package org.attnskip.export;

/**
 * A weight source that returns the previous part's memory to the system before reading the next
 * part (the embedding, each layer, the classifier). A streamed export drops each part once its
 * initializers are written, but G1 allocates arrays this large outside the young generation, where
 * they do not trigger a collection: left alone, dead layers pile up and the heap grows towards
 * -Xmx. Between parts almost nothing is alive, so a full collection here is quick, and it shrinks
 * the heap back.
 */
public final class ReclaimingSource implements LlamaWeightSource {
    private final LlamaWeightSource source;

    private ReclaimingSource(LlamaWeightSource source) {
        this.source = source;
    }

    public static LlamaWeightSource wrap(LlamaWeightSource source) {
        return new ReclaimingSource(source);
    }

    @Override
    public LlamaConfig config() {
        return source.config();
    }

    @Override
    public float[] tokenEmbedding() {
        System.gc();
        return source.tokenEmbedding();
    }

    @Override
    public LlamaWeights.Layer layer(int index) {
        System.gc();
        return source.layer(index);
    }

    @Override
    public float[] finalNorm() {
        return source.finalNorm();
    }

    @Override
    public boolean classifierIsEmbedding() {
        return source.classifierIsEmbedding();
    }

    @Override
    public float[] classifier() {
        System.gc();
        return source.classifier();
    }

    @Override
    public void close() {
        source.close();
    }
}
