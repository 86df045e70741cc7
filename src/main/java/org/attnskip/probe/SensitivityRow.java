package org.attnskip.probe;

import org.attnskip.eval.TextQuality;

import java.util.List;

/**
 * One measured variant: a manipulation on some layers, the evaluator's quality against the
 * baseline, and what the change report predicts it saves.
 *
 * @param k                    the first manipulated layer of a contiguous selection, -1 for a list of layers
 * @param firstChangedLayer    from the change report; -1 when no layer's output changes
 * @param attentionFlopsSavedPerToken at {@code contextLength} (drop only)
 * @param prefillFractionSaved share of the per-token layer compute that prefill skips for every
 *                             prompt position but the last (freeze: (L-k)/L), 0 otherwise
 */
public record SensitivityRow(String mode, int k, List<Integer> layers, int firstChangedLayer, TextQuality quality,
                             int contextLength, long attentionFlopsSavedPerToken, long kvBytesPerTokenBefore,
                             long kvBytesPerTokenAfter, double prefillFractionSaved) {

    public double top1() {
        return quality.top1Agreement().value();
    }

    public double kl() {
        return quality.meanKl().value();
    }

    public double perplexityRatio() {
        return quality.variantPerplexity().value() / quality.baselinePerplexity().value();
    }
}
