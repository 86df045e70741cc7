package org.attnskip.probe;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;

class SingleLayerImportanceTest {
    @Test
    void knownAngles() {
        // Two tokens, two layers. Layer 0: attention keeps the direction (scales it), the MLP turns
        // it by 90 degrees. Layer 1: attention turns token 0 by 60 degrees and token 1 by 180.
        float[][] h0 = {{1, 0}, {0, 2}};
        float[][] a0 = {{3, 0}, {0, 1}};
        float[][] h1 = {{0, 1}, {-2, 0}};
        float[][] a1 = {{0.5f, (float) Math.sqrt(3) / 2}, {2, 0}};
        float[][] h2 = {{0, 1}, {-2, 0}};
        // h1 -> a1: token 0 (0,1) vs (1/2, sqrt3/2): cos = sqrt3/2; token 1 (-2,0) vs (2,0): cos = -1.
        var pass = new HiddenStateRunner.Pass(new float[][][] {h0, h1, h2}, new float[][][] {a0, a1}, null);
        List<SingleLayerImportance.Layer> layers = SingleLayerImportance.measure(List.of(pass));
        assertEquals(0.0, layers.get(0).attention(), 1e-12);
        assertEquals(1.0, layers.get(0).block(), 1e-12);
        assertEquals(((1 - Math.sqrt(3) / 2) + 2) / 2, layers.get(1).attention(), 1e-7);
        assertEquals(0.0, layers.get(1).block(), 1e-12);
    }
}
