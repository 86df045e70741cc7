package org.attnskip.serve;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.javalin.Javalin;
import io.javalin.compression.CompressionStrategy;
import io.javalin.http.Context;

import java.io.IOException;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * An OpenAI-compatible HTTP server over one {@link ServedModel}: routes /v1/completions and
 * /v1/chat/completions (plain, or server-sent events by {@link EventStream}; the chat rendered with
 * the model's own template, see {@link RequestPlanner}), /v1/models, /health and /metrics, checks
 * each request's size and length, and drains on stop. {@link Workers} generate; each prefills its
 * request's prompts with their own KV caches, and the decode steps of running requests (and of
 * their choices) are shared in one batched run when {@link BatchingPolicy} allows it, and run
 * alone otherwise. The bodies are shaped by {@link ResponseJson}.
 */
public final class CompletionServer implements AutoCloseable {
    private final ServedModel model;
    private final ServeLimits limits;
    private final ServerMetrics metrics = new ServerMetrics();
    private final CompletionEngine engine;
    private final RequestPlanner planner;
    private final DecodeBatcher batcher;
    private final String batchingNote;
    private final ObjectMapper json = RequestJson.mapper();
    private final AtomicBoolean draining = new AtomicBoolean();
    private final Workers workers;
    private final ResponseJson shapes;
    private final EventStream events;
    private final AtomicInteger inFlight = new AtomicInteger();
    private Javalin app;

    public CompletionServer(ServedModel model, ServeLimits limits) {
        this.model = model;
        this.limits = limits;
        this.batchingNote = BatchingPolicy.whyAlone(model, limits);
        this.batcher = batchingNote == null ? new DecodeBatcher(model.session(), limits.maxBatch(), metrics) : null;
        this.engine = new CompletionEngine(model.session(), model.tokenizer(), metrics, batcher);
        this.planner = new RequestPlanner(model, limits);
        this.workers = new Workers(limits, draining::get);
        this.shapes = new ResponseJson(json, model);
        this.events = new EventStream(workers, engine, shapes, json, metrics);
        metrics.queueDepth(() -> workers.queued() + (batcher == null ? 0 : batcher.waiting()));
    }

    /** Starts listening; port 0 picks a free one. Returns the port. */
    public int start(String host, int port) {
        return start(host, port, HttpPolicy.DEFAULT);
    }

    /** Starts listening under the given API key, CORS and slow-client policy. */
    public int start(String host, int port, HttpPolicy policy) {
        app = Javalin.create(config -> {
            policy.apply(config);
            config.startup.showJavalinBanner = false;
            config.startup.showOldJavalinVersionWarning = false;
            config.http.maxRequestSize = limits.maxBodyBytes();
            config.http.compressionStrategy = CompressionStrategy.NONE; // compression would buffer the event stream
            config.routes.get("/health", this::health);
            config.routes.get("/metrics", ctx -> ctx.contentType(ServerMetrics.contentType())
                    .result(metrics.render()));
            config.routes.get("/v1/models", this::models);
            config.routes.post("/v1/completions", ctx -> completions(ctx, planner::completions));
            config.routes.post("/v1/chat/completions", ctx -> completions(ctx, planner::chat));
            config.routes.exception(ApiError.class, (e, ctx) -> fail(ctx, e));
            config.routes.error(404, "*", ctx -> {
                if (ctx.result() == null || ctx.result().isEmpty() || !ctx.result().startsWith("{")) {
                    writeError(ctx, new ApiError(404, "invalid_request_error", null, "not_found",
                            "no route " + ctx.method() + " " + ctx.path()));
                }
            });
        });
        app.start(host, port);
        return app.port();
    }

    /** Why requests decode alone, or null when their decode steps are shared. */
    public String batchingNote() {
        return batchingNote;
    }

    /** How many requests may share one decode step: 1 when each decodes alone. */
    public int decodeBatchRows() {
        return batcher == null ? 1 : Math.min(limits.maxBatch(), limits.maxConcurrency());
    }

    public ServerMetrics metrics() {
        return metrics;
    }

    private void health(Context ctx) {
        ctx.status(draining.get() ? 503 : 200).contentType("application/json").result(shapes.health(draining.get()).toString());
    }

    private void models(Context ctx) {
        ctx.contentType("application/json").result(shapes.models(planner.hasChatTemplate()).toString());
    }

    private void completions(Context ctx, java.util.function.Function<JsonNode, RequestPlanner.Plan> planning)
            throws IOException {
        long arrival = System.nanoTime();
        inFlight.incrementAndGet();
        try {
            if (draining.get()) {
                throw new ApiError(503, "server_error", null, "shutting_down", "the server is shutting down");
            }
            long declared = ctx.req().getContentLengthLong();
            if (declared > limits.maxBodyBytes()) {
                throw tooLarge();
            }
            byte[] raw;
            try {
                raw = ctx.bodyAsBytes();
            } catch (RuntimeException e) {
                throw HttpPolicy.bodyReadFailure(e, tooLarge()); // too slow, or past maxRequestSize
            }
            if (raw.length > limits.maxBodyBytes()) {
                throw tooLarge();
            }
            JsonNode body = RequestJson.parse(json, raw);
            RequestPlanner.Plan plan = planning.apply(body);
            CompletionRequest request = plan.request();
            if (request.model() != null && !request.model().equals(model.id())) {
                throw new ApiError(404, "invalid_request_error", "model", "model_not_found",
                        "the model '" + request.model() + "' does not exist; this server serves '" + model.id() + "'");
            }
            for (Choice c : plan.choices()) {
                checkLength(c.promptIds().length, request.maxTokens());
            }
            if (request.stream()) {
                events.answer(ctx, plan, arrival);
            } else {
                whole(ctx, plan, arrival);
            }
        } catch (ApiError e) {
            fail(ctx, e);
        } finally {
            metrics.requestDuration.observe((System.nanoTime() - arrival) / 1e9);
            inFlight.decrementAndGet();
        }
    }

    private ApiError tooLarge() {
        return new ApiError(413, "invalid_request_error", null, "request_too_large",
                "the request body exceeds " + limits.maxBodyBytes() + " bytes");
    }

    private void checkLength(int promptTokens, int maxTokens) {
        int cap = Math.min(limits.maxPromptTokens(), model.maxPositions());
        if (promptTokens > cap) {
            throw new ApiError(400, "invalid_request_error", "prompt", "context_length_exceeded",
                    "the prompt is " + promptTokens + " tokens (BOS included); at most " + cap + " are accepted");
        }
        // The last generated token is not fed back, so prompt + max_tokens - 1 positions are used.
        long positions = (long) promptTokens + maxTokens - 1;
        if (positions > model.maxPositions()) {
            throw new ApiError(400, "invalid_request_error", "max_tokens", "context_length_exceeded",
                    "this model's maximum context is " + model.maxPositions() + " positions; the prompt's "
                            + promptTokens + " tokens plus max_tokens " + maxTokens + " need " + (positions + 1));
        }
    }

    private void whole(Context ctx, RequestPlanner.Plan plan, long arrival) {
        Future<List<CompletionEngine.Completion>> future = workers.submit(() -> engine.complete(plan.choices(), plan.request(),
                index -> piece -> { }, () -> false, arrival));
        List<CompletionEngine.Completion> done;
        try {
            done = future.get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new ApiError(503, "server_error", null, "interrupted", "the request was interrupted");
        } catch (ExecutionException e) {
            throw new ApiError(500, "server_error", null, "generation_failed", "generation failed: " + e.getCause().getMessage());
        }
        ObjectNode root = shapes.whole(plan.format().idPrefix + UUID.randomUUID(), plan, done);
        metrics.tokens(ResponseJson.promptTokens(plan, done), ResponseJson.completionTokens(done));
        metrics.request(200);
        ctx.contentType("application/json").result(root.toString());
    }

    private void fail(Context ctx, ApiError e) {
        metrics.request(e.status());
        writeError(ctx, e);
    }

    private void writeError(Context ctx, ApiError e) {
        ctx.status(e.status()).contentType("application/json").result(e.body(json).toString());
    }

    /**
     * Drains: new completions get 503, running and queued ones finish (up to {@code graceSeconds}),
     * then the listener stops. Safe to call more than once.
     */
    public void drainAndStop(long graceSeconds) {
        if (!draining.compareAndSet(false, true)) {
            return;
        }
        try {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(graceSeconds);
            workers.finish(graceSeconds);
            // Handlers still write the last bytes of answers whose generation has ended.
            while (inFlight.get() > 0 && System.nanoTime() < deadline) {
                Thread.sleep(10);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        workers.stopNow();
        if (batcher != null) {
            batcher.close();
        }
        if (app != null) {
            app.stop();
        }
    }

    @Override
    public void close() {
        drainAndStop(30);
    }
}
