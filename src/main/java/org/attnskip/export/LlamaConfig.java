package org.attnskip.export;

/**
 * The architecture of a Llama-family decoder, as every checkpoint reader produces it and as the
 * exporter, the reference implementation and {@code attnskip.json} use it.
 *
 * @param ropeScaling null when the checkpoint has no rope scaling
 * @param qkvBias     true for Qwen2, whose q/k/v projections carry biases
 * @param bosId       -1 when unknown
 * @param eosId       -1 when unknown
 */
public record LlamaConfig(
        int dim,
        int hiddenDim,
        int layers,
        int heads,
        int kvHeads,
        int vocabSize,
        int seqLen,
        float normEps,
        float ropeTheta,
        RopeScaling ropeScaling,
        boolean sharedClassifier,
        boolean qkvBias,
        int bosId,
        int eosId) {

    /** Refuses a shape no exporter can lay out: heads that do not divide dim, KV heads that do not divide heads, an odd head size. */
    public void requireConsistentShape() {
        if (dim % heads != 0 || heads % kvHeads != 0 || headDim() % 2 != 0) {
            throw new IllegalArgumentException("inconsistent shape: dim " + dim + ", heads " + heads + ", kv heads " + kvHeads);
        }
    }

    public int headDim() {
        return dim / heads;
    }

    public int kvDim() {
        return kvHeads * headDim();
    }

    /** Llama 3's rope scaling ("rope_type": "llama3"). */
    public record RopeScaling(float factor, float lowFreqFactor, float highFreqFactor, int originalMaxPositionEmbeddings) {
    }
}
