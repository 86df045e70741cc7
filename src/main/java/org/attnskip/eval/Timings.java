package org.attnskip.eval;

import org.apache.commons.math3.stat.descriptive.rank.Percentile;

import java.util.List;

/** Summary of repeated timings in milliseconds. */
public record Timings(int runs, double medianMs, double p90Ms, double p99Ms, double meanMs) {
    public static Timings ofNanos(List<Long> nanos) {
        double[] ms = nanos.stream().mapToDouble(n -> n / 1e6).toArray();
        Percentile p = new Percentile().withEstimationType(Percentile.EstimationType.R_7);
        p.setData(ms);
        double mean = 0;
        for (double v : ms) {
            mean += v;
        }
        return new Timings(ms.length, p.evaluate(50), p.evaluate(90), p.evaluate(99), mean / ms.length);
    }
}
