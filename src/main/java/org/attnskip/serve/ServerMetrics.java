package org.attnskip.serve;

import io.prometheus.metrics.core.metrics.Counter;
import io.prometheus.metrics.core.metrics.GaugeWithCallback;
import io.prometheus.metrics.expositionformats.PrometheusTextFormatWriter;
import io.prometheus.metrics.model.registry.PrometheusRegistry;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.IntSupplier;

/**
 * The server's counters, gauges and latency histograms, kept by the Prometheus Java client in a
 * registry of this server's own (several servers may run in one process) and exposed in Prometheus'
 * text format by its writer.
 */
public final class ServerMetrics {
    private static final double[] LATENCY = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
    private static final PrometheusTextFormatWriter TEXT = PrometheusTextFormatWriter.create();

    private final PrometheusRegistry registry = new PrometheusRegistry();
    private final Counter requests = Counter.builder().name("attnskip_requests_total")
            .help("Completion requests answered, by HTTP status.").labelNames("status").register(registry);
    private final Counter promptTokens = Counter.builder().name("attnskip_prompt_tokens_total")
            .help("Prompt tokens (BOS included) of accepted requests.").register(registry);
    private final Counter completionTokens = Counter.builder().name("attnskip_completion_tokens_total")
            .help("Tokens generated.").register(registry);
    private final Counter cancelled = Counter.builder().name("attnskip_requests_cancelled_total")
            .help("Streams whose client went away before the end.").register(registry);
    private final AtomicLong running = new AtomicLong();
    private final AtomicLong kvBytes = new AtomicLong();
    final Histogram timeToFirstToken = new Histogram(registry, "attnskip_time_to_first_token_seconds",
            "From the request's arrival (queue time included) to its first generated token.", LATENCY);
    final Histogram timePerOutputToken = new Histogram(registry, "attnskip_time_per_output_token_seconds",
            "Between consecutive generated tokens of one request.", LATENCY);
    final Histogram requestDuration = new Histogram(registry, "attnskip_request_duration_seconds",
            "Of completion requests, from arrival to the last byte.", LATENCY);
    final Histogram decodeBatchSize = new Histogram(registry, "attnskip_decode_batch_size",
            "Completions that shared one decode step (not observed when requests decode alone).", 1, 2, 4, 8, 16, 32, 64);
    private volatile IntSupplier queueDepth = () -> 0;

    public ServerMetrics() {
        gauge("attnskip_queue_depth", "Requests waiting for a worker, or prefilled and waiting for a row in the shared "
                + "decode step (these count as running too).", () -> queueDepth.getAsInt());
        gauge("attnskip_requests_running", "Requests a worker is generating for.", running::get);
        gauge("attnskip_kv_cache_bytes", "Bytes of KV cache held by running requests.", kvBytes::get);
    }

    private void gauge(String name, String help, java.util.function.LongSupplier value) {
        GaugeWithCallback.builder().name(name).help(help).callback(cb -> cb.call(value.getAsLong())).register(registry);
    }

    void queueDepth(IntSupplier supplier) {
        this.queueDepth = supplier;
    }

    void request(int status) {
        requests.labelValues(Integer.toString(status)).inc();
    }

    void tokens(int prompt, int completion) {
        promptTokens.inc(prompt);
        completionTokens.inc(completion);
    }

    void cancelled() {
        cancelled.inc();
    }

    void running(int delta) {
        running.addAndGet(delta);
    }

    void kvBytes(long delta) {
        kvBytes.addAndGet(delta);
    }

    public long kvBytesInUse() {
        return kvBytes.get();
    }

    public long cancelledCount() {
        return (long) cancelled.get();
    }

    /** The content type of {@link #render()}. */
    public static String contentType() {
        return TEXT.getContentType();
    }

    public String render() {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try {
            TEXT.write(out, registry.scrape());
        } catch (IOException e) {
            throw new UncheckedIOException(e); // a ByteArrayOutputStream does not fail
        }
        return out.toString(StandardCharsets.UTF_8);
    }
}
