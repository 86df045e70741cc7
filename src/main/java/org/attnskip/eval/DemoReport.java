package org.attnskip.eval;

import java.util.List;

/**
 * What {@code attnskip demo} measured: quality sweeps of drop and freeze on one model (the trained
 * model by default, latency not measured there), latency sweeps of the same manipulations on a
 * model whose shape gives attention a real share of the work, and the summary printed first.
 *
 * @param headlineDrop   the drop threshold the summary speaks of (one of the sweep's thresholds)
 * @param headlineFreeze the freeze threshold the summary speaks of
 */
public record DemoReport(List<String> summary, String qualityModel, String latencyModel, double headlineDrop,
                         double headlineFreeze, SweepReport qualityDrop, SweepReport qualityFreeze,
                         SweepReport latencyDrop, SweepReport latencyFreeze) {

    /** The quality sweep's point at the headline threshold of that mode. */
    public SweepPoint quality(boolean drop) {
        return at(drop ? qualityDrop : qualityFreeze, drop ? headlineDrop : headlineFreeze);
    }

    /** The latency sweep's point at the headline threshold of that mode. */
    public SweepPoint latency(boolean drop) {
        return at(drop ? latencyDrop : latencyFreeze, drop ? headlineDrop : headlineFreeze);
    }

    static SweepPoint at(SweepReport sweep, double threshold) {
        return sweep.points().stream().filter(p -> p.threshold() == threshold).findFirst()
                .orElseThrow(() -> new IllegalStateException("the " + sweep.mode() + " sweep has no point at " + threshold));
    }

    public DemoReport withSummary(List<String> lines) {
        return new DemoReport(List.copyOf(lines), qualityModel, latencyModel, headlineDrop, headlineFreeze, qualityDrop,
                qualityFreeze, latencyDrop, latencyFreeze);
    }
}
