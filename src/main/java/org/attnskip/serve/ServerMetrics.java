package org.attnskip.serve;

import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.LongAdder;
import java.util.function.IntSupplier;

/** The server's counters, gauges and latency histograms, rendered in Prometheus' text format. */
public final class ServerMetrics {
    private static final double[] LATENCY = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};

    private final Map<Integer, LongAdder> requestsByStatus = new ConcurrentHashMap<>();
    private final LongAdder promptTokens = new LongAdder();
    private final LongAdder completionTokens = new LongAdder();
    private final LongAdder cancelled = new LongAdder();
    private final AtomicLong running = new AtomicLong();
    private final AtomicLong kvBytes = new AtomicLong();
    final Histogram timeToFirstToken = new Histogram("attnskip_time_to_first_token_seconds",
            "From the request's arrival (queue time included) to its first generated token.", LATENCY);
    final Histogram timePerOutputToken = new Histogram("attnskip_time_per_output_token_seconds",
            "Between consecutive generated tokens of one request.", LATENCY);
    final Histogram requestDuration = new Histogram("attnskip_request_duration_seconds",
            "Of completion requests, from arrival to the last byte.", LATENCY);
    final Histogram decodeBatchSize = new Histogram("attnskip_decode_batch_size",
            "Completions that shared one decode step (not observed when requests decode alone).", 1, 2, 4, 8, 16, 32, 64);
    private volatile IntSupplier queueDepth = () -> 0;

    void queueDepth(IntSupplier supplier) {
        this.queueDepth = supplier;
    }

    void request(int status) {
        requestsByStatus.computeIfAbsent(status, s -> new LongAdder()).increment();
    }

    void tokens(int prompt, int completion) {
        promptTokens.add(prompt);
        completionTokens.add(completion);
    }

    void cancelled() {
        cancelled.increment();
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
        return cancelled.sum();
    }

    public String render() {
        StringBuilder out = new StringBuilder();
        out.append("# HELP attnskip_requests_total Completion requests answered, by HTTP status.\n");
        out.append("# TYPE attnskip_requests_total counter\n");
        new TreeMap<>(requestsByStatus).forEach((status, n) ->
                out.append("attnskip_requests_total{status=\"").append(status).append("\"} ").append(n.sum()).append('\n'));
        counter(out, "attnskip_prompt_tokens_total", "Prompt tokens (BOS included) of accepted requests.", promptTokens.sum());
        counter(out, "attnskip_completion_tokens_total", "Tokens generated.", completionTokens.sum());
        counter(out, "attnskip_requests_cancelled_total", "Streams whose client went away before the end.", cancelled.sum());
        gauge(out, "attnskip_queue_depth", "Requests waiting for a worker, or prefilled and waiting for a row in the shared decode step (these count as running too).", queueDepth.getAsInt());
        gauge(out, "attnskip_requests_running", "Requests a worker is generating for.", running.get());
        gauge(out, "attnskip_kv_cache_bytes", "Bytes of KV cache held by running requests.", kvBytes.get());
        timeToFirstToken.render(out);
        timePerOutputToken.render(out);
        requestDuration.render(out);
        decodeBatchSize.render(out);
        return out.toString();
    }

    private static void counter(StringBuilder out, String name, String help, long value) {
        out.append("# HELP ").append(name).append(' ').append(help).append('\n');
        out.append("# TYPE ").append(name).append(" counter\n");
        out.append(name).append(' ').append(value).append('\n');
    }

    private static void gauge(StringBuilder out, String name, String help, long value) {
        out.append("# HELP ").append(name).append(' ').append(help).append('\n');
        out.append("# TYPE ").append(name).append(" gauge\n");
        out.append(name).append(' ').append(value).append('\n');
    }
}
