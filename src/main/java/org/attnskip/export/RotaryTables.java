package org.attnskip.export;

import org.attnskip.onnx.BadInputException;

/**
 * The cos and sin tables of rotary position embedding, [positions][headDim/2], for llama2.c's
 * convention: pair j of a head is (2j, 2j+1) and turns by angle pos * theta^(-2j/headDim).
 * Angles are formed in float, as llama2.c's run.c does, so that the tables match it bit for bit
 * in the common case. Llama 3's rope scaling rescales the frequencies first.
 */
public final class RotaryTables {
    public final int positions;
    public final int pairs;
    /** [positions][pairs] row-major */
    public final float[] cos;
    /** [positions][pairs] row-major */
    public final float[] sin;

    private RotaryTables(int positions, int pairs, float[] cos, float[] sin) {
        this.positions = positions;
        this.pairs = pairs;
        this.cos = cos;
        this.sin = sin;
    }

    /** 512 MB per table: far above any released model (1M positions x 64 pairs is 2^26), far below a heap's end. */
    static final long MAX_ENTRIES = 1L << 27;

    public static RotaryTables of(LlamaConfig config) {
        return of(config.headDim(), config.seqLen(), config.ropeTheta(), config.ropeScaling());
    }

    /** Refuses a shape whose tables could not be made, before an export writes anything. */
    public static void checkSize(LlamaConfig config) {
        checkSize(config.headDim(), config.seqLen());
    }

    private static void checkSize(int headDim, int positions) {
        if (positions < 1 || headDim < 2 || (long) positions * (headDim / 2) > MAX_ENTRIES) {
            throw new BadInputException("rotary tables for " + positions + " positions of head_dim " + headDim
                    + " are out of range (at most " + MAX_ENTRIES + " entries); check max_position_embeddings / seq_len");
        }
    }

    public static RotaryTables of(int headDim, int positions, float theta, LlamaConfig.RopeScaling scaling) {
        checkSize(headDim, positions);
        int pairs = headDim / 2;
        float[] freq = frequencies(headDim, theta, scaling);
        float[] cos = new float[positions * pairs];
        float[] sin = new float[positions * pairs];
        for (int p = 0; p < positions; p++) {
            for (int j = 0; j < pairs; j++) {
                float angle = p * freq[j];
                cos[p * pairs + j] = (float) Math.cos(angle);
                sin[p * pairs + j] = (float) Math.sin(angle);
            }
        }
        return new RotaryTables(positions, pairs, cos, sin);
    }

    /** The angular frequency of each pair, after Llama 3 scaling when given. */
    public static float[] frequencies(int headDim, float theta, LlamaConfig.RopeScaling scaling) {
        float[] freq = new float[headDim / 2];
        for (int j = 0; j < freq.length; j++) {
            freq[j] = (float) (1.0 / Math.pow(theta, (2 * j) / (double) headDim));
        }
        if (scaling != null) {
            applyLlama3Scaling(freq, scaling);
        }
        return freq;
    }

    /**
     * Llama 3: wavelengths longer than original/lowFreqFactor are slowed by {@code factor}, those
     * shorter than original/highFreqFactor are kept, and the band between is interpolated.
     */
    private static void applyLlama3Scaling(float[] freq, LlamaConfig.RopeScaling s) {
        double original = s.originalMaxPositionEmbeddings();
        double lowFreqWavelen = original / s.lowFreqFactor();
        double highFreqWavelen = original / s.highFreqFactor();
        for (int j = 0; j < freq.length; j++) {
            double f = freq[j];
            double wavelen = 2 * Math.PI / f;
            double scaled;
            if (wavelen < highFreqWavelen) {
                scaled = f;
            } else if (wavelen > lowFreqWavelen) {
                scaled = f / s.factor();
            } else {
                double smooth = (original / wavelen - s.lowFreqFactor()) / (s.highFreqFactor() - s.lowFreqFactor());
                scaled = (1 - smooth) * f / s.factor() + smooth * f;
            }
            freq[j] = (float) scaled;
        }
    }
}
