package org.attnskip.export;

/**
 * All weights of a Llama-family decoder in fp32, row-major, with matrices stored [out][in] as
 * llama2.c and PyTorch do. Rotary embedding uses llama2.c's convention: it rotates adjacent pairs
 * (2j, 2j+1) of each head. Readers of Hugging Face checkpoints (which rotate halves) permute the
 * q and k rows into this convention so that everything downstream sees one convention.
 */
public final class LlamaWeights implements LlamaWeightSource {
    public final LlamaConfig config;
    /** [vocab][dim] */
    public final float[] tokenEmbedding;
    public final Layer[] layers;
    /** [dim] */
    public final float[] finalNorm;
    /** [vocab][dim]; the same array as tokenEmbedding when the classifier is shared */
    public final float[] classifier;

    public LlamaWeights(LlamaConfig config, float[] tokenEmbedding, Layer[] layers, float[] finalNorm, float[] classifier) {
        this.config = config;
        this.tokenEmbedding = tokenEmbedding;
        this.layers = layers;
        this.finalNorm = finalNorm;
        this.classifier = classifier;
    }

    /** Every weight of the source in memory, closing it after. */
    public static LlamaWeights load(LlamaWeightSource source) {
        try (source) {
            float[] embedding = source.tokenEmbedding();
            // grown layer by layer, not sized by the config: a file claiming 2^31 layers is refused
            // at the first layer it lacks instead of exhausting memory up front
            java.util.List<Layer> read = new java.util.ArrayList<>();
            for (int i = 0; i < source.config().layers(); i++) {
                read.add(source.layer(i));
            }
            Layer[] layers = read.toArray(new Layer[0]);
            float[] finalNorm = source.finalNorm();
            float[] classifier = source.classifierIsEmbedding() ? embedding : source.classifier();
            return new LlamaWeights(source.config(), embedding, layers, finalNorm, classifier);
        }
    }

    @Override
    public LlamaConfig config() {
        return config;
    }

    @Override
    public float[] tokenEmbedding() {
        return tokenEmbedding;
    }

    @Override
    public Layer layer(int index) {
        return layers[index];
    }

    @Override
    public float[] finalNorm() {
        return finalNorm;
    }

    @Override
    public WeightRows weight(WeightPart part, int layer) {
        int[] shape = part.shape(config);
        float[] values = switch (part) {
            case EMBEDDING -> tokenEmbedding;
            case FINAL_NORM -> finalNorm;
            case CLASSIFIER -> classifier;
            case ATTN_NORM -> layers[layer].attnNorm;
            case WQ -> layers[layer].wq;
            case WK -> layers[layer].wk;
            case WV -> layers[layer].wv;
            case WO -> layers[layer].wo;
            case BQ -> layers[layer].bq;
            case BK -> layers[layer].bk;
            case BV -> layers[layer].bv;
            case FFN_NORM -> layers[layer].ffnNorm;
            case W1 -> layers[layer].w1;
            case W2 -> layers[layer].w2;
            case W3 -> layers[layer].w3;
        };
        if (values == null) {
            throw new IllegalArgumentException("this model has no " + part);
        }
        return WeightRows.of(values, shape[0], shape[1]);
    }

    @Override
    public boolean classifierIsEmbedding() {
        return classifier == tokenEmbedding;
    }

    @Override
    public float[] classifier() {
        return classifier;
    }

    /**
     * One transformer block. wq [dim][dim], wk and wv [kvDim][dim], wo [dim][dim], w1 and w3
     * [hidden][dim], w2 [dim][hidden]. The biases bq [dim], bk and bv [kvDim] are null unless the
     * architecture has them (Qwen2).
     */
    public record Layer(
            float[] attnNorm,
            float[] wq, float[] wk, float[] wv, float[] wo,
            float[] bq, float[] bk, float[] bv,
            float[] ffnNorm,
            float[] w1, float[] w2, float[] w3) {
    }
}
