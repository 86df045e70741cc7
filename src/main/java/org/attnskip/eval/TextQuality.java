package org.attnskip.eval;

/**
 * Perplexity of both models on the same documents, their paired difference (variant - baseline),
 * the share of positions where the variant's top-1 token is the baseline's, and the mean
 * KL(baseline || variant) in nats per position; intervals come from resampling documents.
 */
public record TextQuality(int documents, long positions, Estimate baselinePerplexity, Estimate variantPerplexity,
                          Estimate perplexityDifference, Estimate top1Agreement, Estimate meanKl) {
}
