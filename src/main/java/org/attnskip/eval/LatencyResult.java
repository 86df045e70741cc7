package org.attnskip.eval;

import java.util.List;

/**
 * Prefill and decode latency of both models measured in the same run, with the KV-cache bytes of one
 * sequence at the largest context measured and the process's peak memory afterwards. Both sessions
 * live in one process, so {@code processPeakMemory} is one number for the pair, not per variant.
 */
public record LatencyResult(int warmup, int repeats, int decodeStepsPerRun, List<LatencyPoint> prefill,
                            List<LatencyPoint> decode, int largestContext, long baselineKvBytes, long variantKvBytes,
                            PeakMemory processPeakMemory) {
}
