package org.attnskip.runtime;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

class SamplerTest {
    @Test
    void temperatureZeroTakesTheFirstLargestLogit() {
        Sampler s = new Sampler(0f, 0.9f, 1);
        assertEquals(2, s.next(new float[] {0.1f, -3f, 5f, 5f, 4.9f}));
    }

    /**
     * llama2.c's xorshift stream for seed 42 starts 0.33909, 0.78226, 0.79014, 0.94404, 0.76439
     * (computed separately with Python integers). Over ten equally likely tokens, coin c picks
     * token floor(10 c).
     */
    @Test
    void plainSamplingFollowsRunCsRandomStream() {
        Sampler s = new Sampler(1f, 0f, 42);
        float[] uniform = new float[10];
        int[] picked = new int[5];
        for (int i = 0; i < picked.length; i++) {
            picked[i] = s.next(uniform);
        }
        assertArrayEquals(new int[] {3, 7, 7, 9, 7}, picked);
    }

    /**
     * Probabilities 0.5, 0.3, 0.15, 0.05 with top-p 0.7: the nucleus is {0, 1} (cumulative 0.8), and
     * coin c picks token 0 when 0.8 c < 0.5, else token 1.
     */
    @Test
    void topPSamplesOnlyInsideTheNucleus() {
        Sampler s = new Sampler(1f, 0.7f, 42);
        float[] logits = {(float) Math.log(0.5), (float) Math.log(0.3), (float) Math.log(0.15), (float) Math.log(0.05)};
        int[] picked = new int[5];
        for (int i = 0; i < picked.length; i++) {
            picked[i] = s.next(logits);
        }
        assertArrayEquals(new int[] {0, 1, 1, 1, 1}, picked);
    }

    @Test
    void sameSeedSameTokens() {
        float[] logits = new float[50];
        for (int i = 0; i < logits.length; i++) {
            logits[i] = (float) Math.sin(i);
        }
        Sampler a = new Sampler(0.8f, 0.9f, 7);
        Sampler b = new Sampler(0.8f, 0.9f, 7);
        for (int i = 0; i < 20; i++) {
            assertEquals(a.next(logits), b.next(logits));
        }
    }
}
