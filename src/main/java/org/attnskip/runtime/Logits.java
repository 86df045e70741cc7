package org.attnskip.runtime;

/** Logits of one run, [batch][seq][vocab] row-major, always as fp32 (fp16 outputs are widened). */
public record Logits(float[] values, int batch, int seq, int vocab) {
    public float[] at(int b, int s) {
        float[] row = new float[vocab];
        System.arraycopy(values, ((b * seq) + s) * vocab, row, 0, vocab);
        return row;
    }

    /** The logits of the last position of sequence b (where the next token is predicted). */
    public float[] last(int b) {
        return at(b, seq - 1);
    }
}
