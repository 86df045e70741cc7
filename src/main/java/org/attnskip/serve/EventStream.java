package org.attnskip.serve;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.javalin.http.Context;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * Answers a streamed request with server-sent events: each piece of text as a worker produces it,
 * then each choice's end, the usage when asked, and [DONE]. A client that goes away stops the
 * worker at its next step.
 */
final class EventStream {
    private sealed interface Event permits Piece, Done, Failed {
    }

    private record Piece(int index, String text) implements Event {
    }

    private record Done(List<CompletionEngine.Completion> completions) implements Event {
    }

    private record Failed(Throwable error) implements Event {
    }

    private final Workers workers;
    private final CompletionEngine engine;
    private final ResponseJson shapes;
    private final ObjectMapper json;
    private final ServerMetrics metrics;

    EventStream(Workers workers, CompletionEngine engine, ResponseJson shapes, ObjectMapper json, ServerMetrics metrics) {
        this.workers = workers;
        this.engine = engine;
        this.shapes = shapes;
        this.json = json;
        this.metrics = metrics;
    }

    void answer(Context ctx, RequestPlanner.Plan plan, long arrival) throws IOException {
        BlockingQueue<Event> events = new LinkedBlockingQueue<>();
        AtomicBoolean cancelled = new AtomicBoolean();
        workers.submit(() -> {
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
                    send(out, shapes.chunk(format, id, c.index(), null, null));
                }
            }
            while (done == null) {
                Event e = events.poll(100, TimeUnit.MILLISECONDS);
                if (e == null) {
                    continue;
                }
                if (e instanceof Piece p) {
                    send(out, shapes.chunk(format, id, p.index(), p.text(), null));
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
                send(out, shapes.chunk(format, id, c.choice().index(), null, c.finishReason()));
            }
            if (plan.request().includeUsage()) {
                send(out, shapes.usageChunk(id, plan, done));
            }
            out.write("data: [DONE]\n\n".getBytes(StandardCharsets.UTF_8));
            // Completes the response (the last chunk) before this request stops counting as in flight,
            // so a drain that stops the listener next cannot cut the stream's end.
            out.close();
            metrics.tokens(ResponseJson.promptTokens(plan, done), ResponseJson.completionTokens(done));
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

    private static void send(OutputStream out, ObjectNode data) throws IOException {
        out.write(("data: " + data + "\n\n").getBytes(StandardCharsets.UTF_8));
        out.flush();
    }
}
