package org.attnskip.eval;

import java.util.List;
import java.util.Map;

/**
 * A threshold sweep: one point per threshold, the thresholds on the quality-latency Pareto frontier
 * (perplexity ratio against latency ratio, both lower is better), and the recommended threshold:
 * the fastest frontier point whose perplexity ratio stays within the tolerance (null if none).
 */
public record SweepReport(Map<String, Object> config, Provenance provenance, ModelInfo baseline, String mode,
                          List<SweepPoint> points, String latencyAxis, List<Double> paretoThresholds,
                          Double recommendedThreshold, double perplexityTolerance) {
}
