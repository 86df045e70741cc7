package org.attnskip.eval;

/**
 * One latency measurement of both models: prefill of {@code tokens} prompt tokens, or one decode
 * step at a context of {@code tokens} positions. {@code ratio} is the variant's median over the
 * baseline's; tokens per second come from the medians.
 */
public record LatencyPoint(String kind, int tokens, Timings baseline, Timings variant, double ratio,
                           double baselineTokensPerSecond, double variantTokensPerSecond) {
    public static LatencyPoint of(String kind, int tokens, Timings baseline, Timings variant) {
        int perRun = kind.equals("prefill") ? tokens : 1;
        return new LatencyPoint(kind, tokens, baseline, variant, variant.medianMs() / baseline.medianMs(),
                perRun * 1000.0 / baseline.medianMs(), perRun * 1000.0 / variant.medianMs());
    }
}
