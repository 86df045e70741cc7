package org.attnskip.export;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;

class RotaryTablesTest {
    /**
     * Llama 3.2's settings (head_dim 128, theta 500000, factor 32, low 1, high 4, original 8192).
     * Expected values from Hugging Face's _compute_llama3_parameters formula, evaluated separately in
     * Python doubles: pairs with wavelength under 2048 keep their frequency, those over 8192 are
     * divided by 32, and pair 30 (wavelength 2948) is interpolated.
     */
    @Test
    void llama3ScalingKeepsHighFrequenciesSlowsLowOnesAndBlendsBetween() {
        float[] f = RotaryTables.frequencies(128, 500000f, new LlamaConfig.RopeScaling(32f, 1f, 4f, 8192));
        assertEquals(1.0, f[0], 1e-7);
        assertEquals(0.12868737343265052, f[10], 1e-7);
        assertEquals(0.005940730375674967, f[25], 1e-8);
        assertEquals(0.001290547928209264, f[30], 1e-8);
        assertEquals(8.570255489881478e-06, f[40], 1e-11);
        assertEquals(7.672314972286278e-08, f[63], 1e-13);
    }

    @Test
    void tablesHoldCosAndSinOfPositionTimesFrequency() {
        RotaryTables t = RotaryTables.of(8, 10, 10000f, null);
        // pair j = 1 of head_dim 8 turns at 10000^(-2/8) = 0.1 rad per position
        assertEquals(Math.cos(0.7), t.cos[7 * 4 + 1], 1e-6);
        assertEquals(Math.sin(0.7), t.sin[7 * 4 + 1], 1e-6);
        assertEquals(1.0, t.cos[0], 0);
        assertEquals(0.0, t.sin[3], 0);
    }
}
