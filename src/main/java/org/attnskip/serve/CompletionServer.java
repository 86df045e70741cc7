package org.attnskip.serve;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.javalin.Javalin;
import io.javalin.compression.CompressionStrategy;
import io.javalin.http.Context;
import org.attnskip.runtime.KvBatch;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * An OpenAI-compatible HTTP server over one {@link ServedModel}: /v1/completions and
 * /v1/chat/completions (plain and server-sent events; the chat rendered with the model's own
 * template, see {@link RequestPlanner}), /v1/models, /health and /metrics. A fixed pool of
 * workers generates; requests beyond the workers wait in a bounded queue and are turned away with
 * 429 when it is full. Each worker prefills its request's prompts with their own KV caches; the
 * decode steps of running requests (and of their choices) are shared in one batched run when
 * the graph accepts a batch and the limits allow more than one row, and run alone otherwise.
 */
public final class CompletionServer implements AutoCloseable {
    private final ServedModel model;
    private final ServeLimits limits;
    private final ServerMetrics metrics = new ServerMetrics();
    private final CompletionEngine engine;
    private final RequestPlanner planner;
    private final DecodeBatcher batcher;
    private final String batchingNote;
    private final ThreadPoolExecutor workers;
    private final ObjectMapper json = RequestJson.mapper();
    private final AtomicBoolean draining = new AtomicBoolean();
    private final AtomicInteger inFlight = new AtomicInteger();
    private final long created = System.currentTimeMillis() / 1000;
    private Javalin app;

    public CompletionServer(ServedModel model, ServeLimits limits) {
        this.model = model;
        this.limits = limits;
        this.batchingNote = batchingNote(model, limits);
        this.batcher = batchingNote == null ? new DecodeBatcher(model.session(), limits.maxBatch(), metrics) : null;
        this.engine = new CompletionEngine(model.session(), model.tokenizer(), metrics, batcher);
        this.planner = new RequestPlanner(model, limits);
        this.workers = new ThreadPoolExecutor(limits.maxConcurrency(), limits.maxConcurrency(), 0, TimeUnit.SECONDS,
                limits.queueCapacity() == 0 ? new java.util.concurrent.SynchronousQueue<>()
                        : new ArrayBlockingQueue<>(limits.queueCapacity()),
                r -> {
                    Thread t = new Thread(r, "attnskip-worker");
                    t.setDaemon(true);
                    return t;
                });
        metrics.queueDepth(() -> workers.getQueue().size() + (batcher == null ? 0 : batcher.waiting()));
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

    /** Largest tolerated disagreement of a shared decode step with decoding alone, relative to the logits. */
    static final double BATCH_TOLERANCE = 1e-2;

    /** Why requests decode alone, or null when their decode steps are shared. */
    private static String batchingNote(ServedModel model, ServeLimits limits) {
        if (limits.maxBatch() < 2 || limits.maxConcurrency() < 2) {
            return "each request decodes alone (--max-batch " + limits.maxBatch() + ", --max-concurrency "
                    + limits.maxConcurrency() + ")";
        }
        if (!model.session().acceptsBatches()) {
            return "each request decodes alone: the graph has a fixed batch size, or no attention_mask or position_ids";
        }
        // Checked on the graph itself: fused attention ops may ignore left padding.
        double disagreement;
        try {
            disagreement = KvBatch.disagreementWithDecodingAlone(model.session());
        } catch (RuntimeException e) {
            return "each request decodes alone: the check of shared decode steps failed (" + e.getMessage() + ")";
        }
        if (disagreement > BATCH_TOLERANCE) {
            return String.format(java.util.Locale.ROOT, "each request decodes alone: on this graph a shared decode step "
                    + "differs from decoding alone by %.3g of the logits (it does not honour left padding)", disagreement);
        }
        return null;
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
        ObjectNode body = json.createObjectNode();
        body.put("status", draining.get() ? "draining" : "ok");
        body.put("model", model.id());
        ctx.status(draining.get() ? 503 : 200).contentType("application/json").result(body.toString());
    }

    private void models(Context ctx) {
        ObjectNode root = json.createObjectNode();
        root.put("object", "list");
        ObjectNode m = root.putArray("data").addObject();
        m.put("id", model.id());
        m.put("object", "model");
        m.put("created", created);
        m.put("owned_by", "attnskip");
        ObjectNode graph = m.putObject("attnskip");
        graph.put("model_file", model.modelFile().toString());
        graph.put("device", model.session().opened().device().cliName());
        graph.put("max_positions", model.maxPositions() == Integer.MAX_VALUE ? null : model.maxPositions());
        ArrayNode cached = graph.putArray("cached_layers");
        model.session().cachedLayers().forEach(cached::add);
        graph.put("kv_bytes_per_token", model.session().kvBytesPerToken());
        graph.put("chat_template", planner.hasChatTemplate());
        ObjectNode rewrite = graph.putObject("rewrite");
        if (model.rewrite().isEmpty()) {
            rewrite.put("mode", "none");
        } else {
            model.rewrite().forEach(rewrite::put);
        }
        ctx.contentType("application/json").result(root.toString());
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
                stream(ctx, plan, arrival);
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

    private <T> Future<T> submit(java.util.concurrent.Callable<T> job) {
        try {
            return workers.submit(job);
        } catch (RejectedExecutionException e) {
            throw new ApiError(draining.get() ? 503 : 429, draining.get() ? "server_error" : "rate_limit_exceeded", null,
                    draining.get() ? "shutting_down" : "queue_full", draining.get() ? "the server is shutting down"
                    : "the server is busy: " + limits.maxConcurrency() + " requests are running and "
                    + limits.queueCapacity() + " waiting; retry later");
        }
    }

    private void whole(Context ctx, RequestPlanner.Plan plan, long arrival) {
        Future<List<CompletionEngine.Completion>> future = submit(() -> engine.complete(plan.choices(), plan.request(),
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
        ResponseFormat format = plan.format();
        ObjectNode root = envelope(format.idPrefix + UUID.randomUUID(), format.object);
        ArrayNode choices = root.putArray("choices");
        done.forEach(c -> format.choice(choices.addObject(), c));
        root.set("usage", usage(plan, done));
        metrics.tokens(promptTokens(plan, done), completionTokens(done));
        metrics.request(200);
        ctx.contentType("application/json").result(root.toString());
    }

    private sealed interface Event permits Piece, Done, Failed {
    }

    private record Piece(int index, String text) implements Event {
    }

    private record Done(List<CompletionEngine.Completion> completions) implements Event {
    }

    private record Failed(Throwable error) implements Event {
    }

    private void stream(Context ctx, RequestPlanner.Plan plan, long arrival) throws IOException {
        BlockingQueue<Event> events = new LinkedBlockingQueue<>();
        AtomicBoolean cancelled = new AtomicBoolean();
        submit(() -> {
            try {
                events.add(new Done(engine.complete(plan.choices(), plan.request(),
                        index -> piece -> events.add(new Piece(index, piece)), cancelled::get, arrival)));
            } catch (Throwable t) {
                events.add(new Failed(t));
            }
            return null;
        });
        ResponseFormat format = plan.format();
        String id = format.idPrefix + UUID.randomUUID();
        ctx.status(200);
        ctx.res().setContentType("text/event-stream; charset=utf-8");
        ctx.res().setHeader("Cache-Control", "no-cache");
        OutputStream out = ctx.res().getOutputStream();
        ctx.res().flushBuffer();
        List<CompletionEngine.Completion> done = null;
        try {
            if (format == ResponseFormat.CHAT) { // a chat stream opens each choice with the assistant's role
                for (Choice c : plan.choices()) {
                    send(out, chunk(format, id, c.index(), null, null));
                }
            }
            while (done == null) {
                Event e = events.poll(100, TimeUnit.MILLISECONDS);
                if (e == null) {
                    continue;
                }
                if (e instanceof Piece p) {
                    send(out, chunk(format, id, p.index(), p.text(), null));
                } else if (e instanceof Done d) {
                    done = d.completions();
                } else if (e instanceof Failed f) {
                    send(out, new ApiError(500, "server_error", null, "generation_failed",
                            "generation failed: " + f.error().getMessage()).body(json));
                    metrics.request(500);
                    return;
                }
            }
            for (CompletionEngine.Completion c : done) {
                send(out, chunk(format, id, c.choice().index(), null, c.finishReason()));
            }
            if (plan.request().includeUsage()) {
                ObjectNode last = envelope(id, format.chunkObject);
                last.putArray("choices");
                last.set("usage", usage(plan, done));
                send(out, last);
            }
            out.write("data: [DONE]\n\n".getBytes(StandardCharsets.UTF_8));
            // Completes the response (the last chunk) before this request stops counting as in flight,
            // so a drain that stops the listener next cannot cut the stream's end.
            out.close();
            metrics.tokens(promptTokens(plan, done), completionTokens(done));
            metrics.request(200);
        } catch (IOException gone) {
            // The client closed the connection: stop the worker at its next step, which frees the cache.
            cancelled.set(true);
            metrics.cancelled();
            metrics.request(499);
        } catch (InterruptedException e) {
            cancelled.set(true);
            Thread.currentThread().interrupt();
        }
    }

    private void send(OutputStream out, ObjectNode data) throws IOException {
        out.write(("data: " + data + "\n\n").getBytes(StandardCharsets.UTF_8));
        out.flush();
    }

    private ObjectNode chunk(ResponseFormat format, String id, int index, String text, String finishReason) {
        ObjectNode root = envelope(id, format.chunkObject);
        format.chunk(root.putArray("choices").addObject(), index, text, finishReason);
        return root;
    }

    private ObjectNode envelope(String id, String object) {
        ObjectNode root = json.createObjectNode();
        root.put("id", id);
        root.put("object", object);
        root.put("created", System.currentTimeMillis() / 1000);
        root.put("model", model.id());
        return root;
    }

    private ObjectNode usage(RequestPlanner.Plan plan, List<CompletionEngine.Completion> done) {
        ObjectNode u = json.createObjectNode();
        int prompt = promptTokens(plan, done);
        int completion = completionTokens(done);
        u.put("prompt_tokens", prompt);
        u.put("completion_tokens", completion);
        u.put("total_tokens", prompt + completion);
        return u;
    }

    /** Each prompt counts once, however many choices continue it. */
    private static int promptTokens(RequestPlanner.Plan plan, List<CompletionEngine.Completion> done) {
        return done.stream().filter(c -> c.choice().index() % plan.request().n() == 0)
                .mapToInt(CompletionEngine.Completion::promptTokens).sum();
    }

    private static int completionTokens(List<CompletionEngine.Completion> done) {
        return done.stream().mapToInt(CompletionEngine.Completion::completionTokens).sum();
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
        workers.shutdown();
        try {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(graceSeconds);
            workers.awaitTermination(graceSeconds, TimeUnit.SECONDS);
            // Handlers still write the last bytes of answers whose generation has ended.
            while (inFlight.get() > 0 && System.nanoTime() < deadline) {
                Thread.sleep(10);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        workers.shutdownNow();
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
