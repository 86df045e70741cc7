package org.attnskip.runtime;

import java.util.Arrays;

/**
 * Picks the next token from logits the way llama2.c's run.c does: argmax at temperature 0;
 * otherwise softmax(logits / temperature), then top-p (nucleus) sampling when 0 < topP < 1, with
 * run.c's xorshift random stream. With seed N > 0 the coin flips are run.c's for {@code -s N}.
 */
public final class Sampler {
    private final float temperature;
    private final float topP;
    private long state;

    public Sampler(float temperature, float topP, long seed) {
        if (!(temperature >= 0) || Float.isInfinite(temperature)) {
            throw new IllegalArgumentException("temperature must be >= 0, got " + temperature);
        }
        this.temperature = temperature;
        this.topP = topP;
        // xorshift never leaves state 0; run.c takes the clock then, we take a fixed odd constant.
        this.state = seed != 0 ? seed : 0x9E3779B97F4A7C15L;
    }

    public int next(float[] logits) {
        if (temperature == 0f) {
            return argmax(logits);
        }
        float[] probs = new float[logits.length];
        for (int i = 0; i < logits.length; i++) {
            probs[i] = logits[i] / temperature;
        }
        softmax(probs);
        float coin = randomFloat();
        return topP <= 0f || topP >= 1f ? sampleAll(probs, coin) : sampleTopP(probs, coin);
    }

    static int argmax(float[] v) {
        int best = 0;
        for (int i = 1; i < v.length; i++) {
            if (v[i] > v[best]) {
                best = i;
            }
        }
        return best;
    }

    private static void softmax(float[] x) {
        float max = x[0];
        for (float v : x) {
            max = Math.max(max, v);
        }
        float sum = 0;
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) Math.exp(x[i] - max);
            sum += x[i];
        }
        for (int i = 0; i < x.length; i++) {
            x[i] /= sum;
        }
    }

    private static int sampleAll(float[] probs, float coin) {
        float cdf = 0;
        for (int i = 0; i < probs.length; i++) {
            cdf += probs[i];
            if (coin < cdf) {
                return i;
            }
        }
        return probs.length - 1; // rounding left the cdf short of 1
    }

    /** Samples among the most likely tokens whose cumulative probability first exceeds topP. */
    private int sampleTopP(float[] probs, float coin) {
        // Tokens below this cannot be in the nucleus, so they need not be sorted.
        float cutoff = (1f - topP) / (probs.length - 1);
        Integer[] candidates = new Integer[probs.length];
        int n = 0;
        for (int i = 0; i < probs.length; i++) {
            if (probs[i] >= cutoff) {
                candidates[n++] = i;
            }
        }
        Integer[] sorted = Arrays.copyOf(candidates, n);
        Arrays.sort(sorted, (a, b) -> Float.compare(probs[b], probs[a]));
        float cumulative = 0;
        int last = n - 1;
        for (int i = 0; i < n; i++) {
            cumulative += probs[sorted[i]];
            if (cumulative > topP) {
                last = i;
                break;
            }
        }
        float r = coin * cumulative;
        float cdf = 0;
        for (int i = 0; i <= last; i++) {
            cdf += probs[sorted[i]];
            if (r < cdf) {
                return sorted[i];
            }
        }
        return sorted[last];
    }

    private float randomFloat() {
        state ^= state >>> 12;
        state ^= state << 25;
        state ^= state >>> 27;
        int u32 = (int) ((state * 0x2545F4914F6CDD1DL) >>> 32);
        return (u32 >>> 8) / 16777216.0f;
    }
}
