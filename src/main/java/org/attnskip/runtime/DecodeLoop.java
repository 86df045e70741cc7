package org.attnskip.runtime;

/**
 * The decode loop every caller shares (generate, serve, eval's greedy agreement): after a prefill
 * ({@link DecoderSession#append} of the prompt), feed one token, let the caller pick the next one
 * from that run's logits (greedy or sampled, see {@link Sampler}), and go on until it says stop.
 */
public final class DecodeLoop {
    private DecodeLoop() {
    }

    /** Picks the token to feed after a run's last-position logits, or returns -1 to stop. */
    @FunctionalInterface
    public interface NextToken {
        int after(float[] logits);
    }

    /**
     * Feeds {@code first}, then each token {@code next} picks, one per run, after the cached
     * positions of one sequence (batch 1). Consumes the cache, also on failure.
     *
     * @return how many runs were made
     */
    public static int decode(DecoderSession session, KvCache cache, int first, NextToken next) {
        int runs = 0;
        try {
            for (int token = first; token >= 0; runs++) {
                DecoderSession.Output out = session.append(new int[] {token}, cache, LogitRows.LAST);
                cache = out.cache();
                token = next.after(out.logits().last(0));
            }
        } finally {
            cache.close();
        }
        return runs;
    }
}
