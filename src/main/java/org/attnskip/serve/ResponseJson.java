package org.attnskip.serve;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.util.List;

/** The JSON bodies the server answers with, OpenAI's shapes: completions, stream chunks, usage, models, health. */
final class ResponseJson {
    private final ObjectMapper json;
    private final ServedModel model;
    private final long created = System.currentTimeMillis() / 1000;

    ResponseJson(ObjectMapper json, ServedModel model) {
        this.json = json;
        this.model = model;
    }

    ObjectNode health(boolean draining) {
        ObjectNode body = json.createObjectNode();
        body.put("status", draining ? "draining" : "ok");
        body.put("model", model.id());
        return body;
    }

    ObjectNode models(boolean chatTemplate) {
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
        graph.put("chat_template", chatTemplate);
        ObjectNode rewrite = graph.putObject("rewrite");
        if (model.rewrite().isEmpty()) {
            rewrite.put("mode", "none");
        } else {
            model.rewrite().forEach(rewrite::put);
        }
        return root;
    }

    /** A whole (not streamed) answer. */
    ObjectNode whole(String id, RequestPlanner.Plan plan, List<CompletionEngine.Completion> done) {
        ResponseFormat format = plan.format();
        ObjectNode root = envelope(id, format.object);
        ArrayNode choices = root.putArray("choices");
        done.forEach(c -> format.choice(choices.addObject(), c));
        root.set("usage", usage(plan, done));
        return root;
    }

    ObjectNode chunk(ResponseFormat format, String id, int index, String text, String finishReason) {
        ObjectNode root = envelope(id, format.chunkObject);
        format.chunk(root.putArray("choices").addObject(), index, text, finishReason);
        return root;
    }

    /** The last chunk of a stream that asked for usage: no choices. */
    ObjectNode usageChunk(String id, RequestPlanner.Plan plan, List<CompletionEngine.Completion> done) {
        ObjectNode last = envelope(id, plan.format().chunkObject);
        last.putArray("choices");
        last.set("usage", usage(plan, done));
        return last;
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
    static int promptTokens(RequestPlanner.Plan plan, List<CompletionEngine.Completion> done) {
        return done.stream().filter(c -> c.choice().index() % plan.request().n() == 0)
                .mapToInt(CompletionEngine.Completion::promptTokens).sum();
    }

    static int completionTokens(List<CompletionEngine.Completion> done) {
        return done.stream().mapToInt(CompletionEngine.Completion::completionTokens).sum();
    }
}
