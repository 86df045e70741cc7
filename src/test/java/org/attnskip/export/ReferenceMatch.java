package org.attnskip.export;

import org.attnskip.Deltas;
import org.attnskip.reference.ReferenceLlama;
import org.attnskip.runtime.DecoderSession;
import org.attnskip.runtime.Device;
import org.attnskip.runtime.KvCache;
import org.attnskip.runtime.Logits;

import java.nio.file.Path;
import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The exporter's oracle check: an exported model file on ONNX Runtime against ReferenceLlama on
 * the same weights, token by token, both as one prefill and decoded one step at a time through the
 * KV cache (the two paths use different parts of the graph: the causal mask and the cache concat).
 */
public final class ReferenceMatch {
    private ReferenceMatch() {
    }

    /** Asserts every logit is within tolerance of the reference and returns the largest |delta| seen. */
    public static double assertLogitsMatch(Path modelFile, LlamaWeights weights, int[] tokens, double tolerance) {
        int n = tokens.length;
        ReferenceLlama ref = new ReferenceLlama(weights);
        float[][] expected = new float[n][];
        for (int pos = 0; pos < n; pos++) {
            expected[pos] = ref.forward(tokens[pos], pos);
        }
        double worst = 0;
        try (DecoderSession session = DecoderSession.open(modelFile, Device.CPU)) {
            long[][] ids = {new long[n]};
            long[][] positions = {new long[n]};
            long[][] mask = {new long[n]};
            for (int i = 0; i < n; i++) {
                ids[0][i] = tokens[i];
                positions[0][i] = i;
                mask[0][i] = 1;
            }
            DecoderSession.Output prefill = session.run(ids, mask, positions, session.emptyCache(1));
            prefill.cache().close();
            for (int pos = 0; pos < n; pos++) {
                worst = Math.max(worst, maxAbsDelta(expected[pos], prefill.logits().at(0, pos), tolerance, "prefill pos " + pos));
            }

            KvCache cache = session.emptyCache(1);
            for (int pos = 0; pos < n; pos++) {
                long[][] stepMask = {new long[pos + 1]};
                Arrays.fill(stepMask[0], 1);
                DecoderSession.Output step = session.run(new long[][] {{tokens[pos]}}, stepMask, new long[][] {{pos}}, cache);
                cache = step.cache();
                Logits l = step.logits();
                assertEquals(1, l.seq());
                worst = Math.max(worst, maxAbsDelta(expected[pos], l.at(0, 0), tolerance, "decode pos " + pos));
            }
            assertEquals(n, cache.length());
            cache.close();
        }
        return worst;
    }

    private static double maxAbsDelta(float[] expected, float[] actual, double tolerance, String where) {
        assertEquals(expected.length, actual.length, where);
        double worst = Deltas.maxAbsDelta(expected, actual);
        assertTrue(worst <= tolerance, where + ": max |delta| " + worst + " > " + tolerance);
        return worst;
    }
}
