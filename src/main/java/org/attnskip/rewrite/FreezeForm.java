package org.attnskip.rewrite;

/** The two forms of a freeze graph: both give the last position the same logits. */
public enum FreezeForm {
    /** Every position's logits, each as if it were the last token: for scoring a whole text in one pass. */
    EVALUATION,
    /** Prefill runs layers >= k for the last position only, logits [batch, 1, vocab]: what a user deploys. */
    DEPLOYABLE
}
