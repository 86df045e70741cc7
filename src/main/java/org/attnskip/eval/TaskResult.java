package org.attnskip.eval;

/**
 * Accuracy of both models on one task and the paired difference (variant - baseline), with
 * intervals from resampling items; {@code agreement} is the share of items on which both models
 * make the same prediction (the same choice, or both right / both wrong on a cloze item).
 */
public record TaskResult(String task, String kind, int items, Estimate baselineAccuracy, Estimate variantAccuracy,
                         Estimate accuracyDifference, Estimate baselineLogLikelihood, Estimate variantLogLikelihood,
                         double agreement) {
}
