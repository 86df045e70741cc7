package org.attnskip.serve;

import io.prometheus.metrics.model.registry.PrometheusRegistry;

/**
 * One of the server's histograms: a classic (fixed-bucket) Prometheus histogram from the Prometheus
 * Java client, registered in the server's own registry, with the count and sum the tests read.
 */
final class Histogram {
    private final io.prometheus.metrics.core.metrics.Histogram histogram;

    Histogram(PrometheusRegistry registry, String name, String help, double... bounds) {
        this.histogram = io.prometheus.metrics.core.metrics.Histogram.builder()
                .name(name).help(help).classicOnly().classicUpperBounds(bounds).register(registry);
    }

    void observe(double value) {
        histogram.observe(value);
    }

    long count() {
        return histogram.getCount();
    }

    double sum() {
        return histogram.getSum();
    }
}
