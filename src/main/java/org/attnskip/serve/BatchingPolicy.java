package org.attnskip.serve;

import org.attnskip.runtime.KvBatch;

/**
 * Whether the decode steps of running requests are shared in one batched run: only when the limits
 * allow more than one row, the graph takes a batch, and a shared step is checked, on the graph
 * itself, to give what decoding alone gives.
 */
final class BatchingPolicy {
    /** Largest tolerated disagreement of a shared decode step with decoding alone, relative to the logits. */
    static final double BATCH_TOLERANCE = 1e-2;

    private BatchingPolicy() {
    }

    /** Why requests decode alone, or null when their decode steps are shared. */
    static String whyAlone(ServedModel model, ServeLimits limits) {
        if (limits.maxBatch() < 2 || limits.maxConcurrency() < 2) {
            return "each request decodes alone (--max-batch " + limits.maxBatch() + ", --max-concurrency "
                    + limits.maxConcurrency() + ")";
        }
        if (!model.session().acceptsBatches()) {
            return "each request decodes alone: the graph has a fixed batch size, or no attention_mask or position_ids";
        }
        // Checked on the graph itself: fused attention ops may ignore the padding (left padding,
        // except GroupQueryAttention, which gets right padding and each row's length).
        double disagreement;
        try {
            disagreement = KvBatch.disagreementWithDecodingAlone(model.session());
        } catch (RuntimeException e) {
            return "each request decodes alone: the check of shared decode steps failed (" + e.getMessage() + ")";
        }
        if (disagreement > BATCH_TOLERANCE) {
            return String.format(java.util.Locale.ROOT, "each request decodes alone: on this graph a shared decode step "
                    + "differs from decoding alone by %.3g of the logits (it does not honour %s padding)", disagreement,
                    model.session().batchPadding().name().toLowerCase(java.util.Locale.ROOT));
        }
        return null;
    }
}
