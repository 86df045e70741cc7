package org.attnskip.eval;

/**
 * How closely the variant's greedy continuations follow the baseline's, for the same prompts:
 * the number of leading tokens that are identical, and ROUGE-L F1 (longest common subsequence)
 * over token ids; intervals come from resampling prompts.
 */
public record GenerationAgreement(int prompts, int promptTokens, int newTokens, Estimate exactPrefixTokens,
                                  Estimate rougeL) {
}
