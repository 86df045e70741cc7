package org.attnskip.eval;

/**
 * Accuracy of both models on one task and the paired difference (variant - baseline), with
 * intervals from resampling items; {@code agreement} is the share of items on which both models
 * make the same prediction (the same choice, or both right / both wrong on a cloze item).
 * {@code logLikelihoodDifference} is the paired mean of the gold answer's log-likelihood (variant -
 * baseline): it moves before accuracy does, so small changes show on few items.
 */
public record TaskResult(String task, String kind, int items, Estimate baselineAccuracy, Estimate variantAccuracy,
                         Estimate accuracyDifference, Estimate baselineLogLikelihood, Estimate variantLogLikelihood,
                         Estimate logLikelihoodDifference, double agreement) {
}
