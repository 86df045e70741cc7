package org.attnskip.eval;

import java.util.List;

/**
 * One threshold of a sweep: which layers changed and how the variant compares with the baseline;
 * {@code generation} is null for random (it cannot run the generation loop) and without documents.
 */
public record SweepPoint(double threshold, List<Integer> layers, TextQuality text, List<TaskResult> tasks,
                         GenerationAgreement generation, LatencyResult latency) {
    /** Variant/baseline median ratio of the largest decode context (1 when none was measured). */
    public double decodeRatio() {
        return latency == null || latency.decode().isEmpty() ? 1 : latency.decode().get(latency.decode().size() - 1).ratio();
    }

    /** Variant/baseline median ratio of the largest prefill point (1 when none was measured). */
    public double prefillRatio() {
        return latency == null || latency.prefill().isEmpty() ? 1 : latency.prefill().get(latency.prefill().size() - 1).ratio();
    }

    /** Variant perplexity over baseline perplexity (1 = no loss). */
    public double perplexityRatio() {
        return text == null ? 1 : text.variantPerplexity().value() / text.baselinePerplexity().value();
    }
}
