package org.attnskip.runtime;

/**
 * Which positions of a run a caller reads logits for. Graphs with a {@code logits_to_keep} input
 * then compute the LM head for those positions only; other graphs give every position either way.
 */
public enum LogitRows {
    /** Every position's logits (scoring, perplexity, probes, prompt logprobs): the default. */
    ALL,
    /** The last position's only: what picks the next token (generation, serving, decode steps). */
    LAST
}
