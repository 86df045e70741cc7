package org.attnskip.probe;

import org.attnskip.export.LlamaWeights;
import org.attnskip.export.SyntheticWeights;
import org.attnskip.reference.AffineMap;
import org.attnskip.reference.Manipulation;
import org.attnskip.reference.ReferenceLlama;
import org.attnskip.runtime.LogProbs;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;
import java.util.TreeSet;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class OutputRefinementTest {
    private static final LlamaWeights WEIGHTS =
            SyntheticWeights.generate("layers=4,hidden=16,heads=2,kv_heads=1,ffn=40,vocab=48,seq=32", 7);
    private static final int DIM = 16;

    private static List<int[]> text(long seed, int sequences, int length) {
        Random r = new Random(seed);
        List<int[]> out = new java.util.ArrayList<>();
        for (int s = 0; s < sequences; s++) {
            int[] ids = new int[length];
            for (int t = 0; t < length; t++) {
                ids[t] = r.nextInt(48);
            }
            out.add(ids);
        }
        return out;
    }

    private static Map<Integer, AffineMap> randomMaps(long seed, double scale) {
        Random r = new Random(seed);
        Map<Integer, AffineMap> maps = new TreeMap<>();
        for (int layer = 2; layer < 4; layer++) {
            float[] m = new float[DIM * DIM];
            float[] b = new float[DIM];
            for (int i = 0; i < m.length; i++) {
                m[i] = (float) (scale * r.nextGaussian());
            }
            for (int i = 0; i < DIM; i++) {
                b[i] = (float) (scale * r.nextGaussian());
            }
            maps.put(layer, new AffineMap(DIM, m, null, b));
        }
        return maps;
    }

    /** Mean KL(original || compensated) over every position, from the reference implementation's own passes. */
    private static double referenceKl(List<int[]> text, Map<Integer, AffineMap> maps) {
        ReferenceLlama ref = new ReferenceLlama(WEIGHTS);
        double sum = 0;
        int n = 0;
        for (int[] ids : text) {
            float[][] base = ref.logitsAllPositions(ids);
            float[][] variant = ref.logitsAllPositions(ids, new Manipulation.CompensatedDrop(maps));
            for (int t = 0; t < ids.length; t++) {
                double[] p = LogProbs.logSoftmax(base[t]);
                double[] q = LogProbs.logSoftmax(variant[t]);
                for (int v = 0; v < p.length; v++) {
                    sum += Math.exp(p[v]) * (p[v] - q[v]);
                }
                n++;
            }
        }
        return sum / n;
    }

    @Test
    void itsNetworkScoresTheSameKlAsTheReferenceImplementationsCompensatedDrop() {
        List<int[]> text = text(1, 3, 20);
        Map<Integer, AffineMap> maps = randomMaps(2, 0.1);
        double reference = referenceKl(text, maps);
        assertTrue(reference > 0.01, "the maps should change the output; KL " + reference);
        assertEquals(reference, OutputRefinement.meanKl(WEIGHTS, text, maps), 1e-4 * reference);
    }

    @Test
    void gradientMatchesCentralDifferencesOfTheKl() {
        List<int[]> text = text(3, 2, 16);
        Map<Integer, AffineMap> maps = randomMaps(4, 0.1);
        for (int layer : List.of(2, 3)) {
            double[] g = OutputRefinement.mapGradient(WEIGHTS, text, maps, layer);
            for (int index : new int[] {0, 17, 100, 255}) {
                double h = 1e-2;
                double up = OutputRefinement.meanKl(WEIGHTS, text, nudged(maps, layer, index, h));
                double down = OutputRefinement.meanKl(WEIGHTS, text, nudged(maps, layer, index, -h));
                double numeric = (up - down) / (2 * h);
                assertEquals(numeric, g[index], 1e-3 * Math.max(1e-2, Math.abs(numeric)),
                        "layer " + layer + ", M entry " + index);
            }
        }
    }

    private static Map<Integer, AffineMap> nudged(Map<Integer, AffineMap> maps, int layer, int index, double by) {
        Map<Integer, AffineMap> out = new TreeMap<>(maps);
        AffineMap m = maps.get(layer);
        float[] first = m.first().clone();
        first[index] += (float) by;
        out.put(layer, new AffineMap(DIM, first, null, m.bias()));
        return out;
    }

    @Test
    void refinementFromPlainDropLowersTheKlOnTextItWasNotTrainedOn() {
        List<int[]> train = text(5, 16, 32);
        List<int[]> other = text(6, 4, 32);
        Map<Integer, AffineMap> zero = randomMaps(0, 0.0);
        Map<Integer, AffineMap> refined = OutputRefinement.refine(WEIGHTS, train, zero,
                new OutputRefinement.Settings(20, 3e-3, 64, 1), line -> { });
        assertEquals(zero.keySet(), refined.keySet());
        double plain = referenceKl(other, zero);
        double after = referenceKl(other, refined);
        assertTrue(after < 0.8 * plain, "KL on other text: plain drop " + plain + ", refined " + after);
    }

    @Test
    void appliesOnlyToTheTopBlockOfLayers() {
        assertTrue(OutputRefinement.applies(new TreeSet<>(List.of(2, 3)), 4));
        assertFalse(OutputRefinement.applies(new TreeSet<>(List.of(1, 3)), 4));
        assertFalse(OutputRefinement.applies(new TreeSet<>(List.of(1, 2)), 4));
        assertThrows(IllegalArgumentException.class, () -> OutputRefinement.refine(WEIGHTS, text(1, 1, 4),
                Map.of(1, randomMaps(0, 0).get(2)), OutputRefinement.Settings.DEFAULT, line -> { }));
    }
}
