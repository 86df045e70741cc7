package org.attnskip.serve;

import org.attnskip.runtime.LogProbs;
import org.attnskip.runtime.Logits;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The log-probability the model gave one token, and its {@code k} most likely alternatives at that
 * position: log-softmax of the raw logits in double precision (before temperature or top-p), the
 * same numbers {@code attnskip eval} scores with.
 *
 * @param topIds      the k most likely ids, most likely first (ties: lower id first)
 * @param topLogprobs their log-probabilities, in the same order
 */
record TokenLogprob(int token, double logprob, int[] topIds, double[] topLogprobs) {

    /** The entry for {@code token} drawn from the distribution {@code logits}. */
    static TokenLogprob of(float[] logits, int token, int k) {
        double[] logp = LogProbs.logSoftmax(logits);
        int[] top = topK(logp, k);
        double[] topLp = new double[top.length];
        for (int i = 0; i < top.length; i++) {
            topLp[i] = logp[top[i]];
        }
        return new TokenLogprob(token, logp[token], top, topLp);
    }

    /**
     * One entry per prompt token from a prefill's logits (position p predicts token p + 1); the
     * first token has nothing before it, so its entry is null, as in OpenAI's echo.
     */
    static List<TokenLogprob> ofPrompt(Logits logits, int[] ids, int k) {
        if (logits.seq() < ids.length) {
            throw new IllegalStateException("the prefill returned " + logits.seq() + " positions for " + ids.length
                    + " prompt tokens");
        }
        List<TokenLogprob> out = new ArrayList<>(ids.length);
        out.add(null);
        for (int p = 1; p < ids.length; p++) {
            out.add(of(logits.at(0, p - 1), ids[p], k));
        }
        return out;
    }

    /** Indices of the k largest values, largest first; a partial selection, as k is small next to the vocabulary. */
    private static int[] topK(double[] values, int k) {
        int n = Math.min(k, values.length);
        int[] best = new int[n];
        int size = 0;
        for (int i = 0; i < values.length; i++) {
            if (size < n) {
                best[size++] = i;
            } else if (n > 0 && values[i] > values[best[n - 1]]) {
                best[n - 1] = i;
            } else {
                continue;
            }
            // Bubble the newcomer into place: the list stays sorted, largest first, earlier ids first on ties.
            for (int j = size - 1; j > 0 && values[best[j]] > values[best[j - 1]]; j--) {
                int t = best[j];
                best[j] = best[j - 1];
                best[j - 1] = t;
            }
        }
        return Arrays.copyOf(best, size);
    }
}
