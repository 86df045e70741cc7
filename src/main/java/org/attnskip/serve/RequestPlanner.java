package org.attnskip.serve;

import ai.onnxruntime.OrtException;
import ai.onnxruntime.TensorInfo;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.attnskip.runtime.Tokenizer;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ThreadLocalRandom;

/**
 * Turns a checked request body into the choices to generate: the prompts tokenized (a chat's
 * messages rendered with the model's template first), each repeated n times with its own seed.
 * Fields no endpoint knows are ignored, as OpenAI does, and named once on stderr.
 */
final class RequestPlanner {
    /** What a request asks for: its parameters, its choices, and the API it is answered in. */
    record Plan(CompletionRequest request, List<Choice> choices, ResponseFormat format) {
    }

    private static final Set<String> CHAT_FIELDS = Set.of("model", "messages", "max_tokens", "max_completion_tokens",
            "temperature", "top_p", "seed", "stop", "stream", "stream_options", "n", "logprobs", "top_logprobs",
            "presence_penalty", "frequency_penalty", "logit_bias", "user");

    private final ServedModel model;
    private final ServeLimits limits;
    private final ChatTemplate template;
    private final int[] chatStopIds;
    private final boolean lastPositionOnly;
    private final Set<String> reported = ConcurrentHashMap.newKeySet();
    private final ObjectMapper json = new ObjectMapper();

    RequestPlanner(ServedModel model, ServeLimits limits) {
        this.model = model;
        this.limits = limits;
        this.template = ChatTemplate.find(model.modelFile().toAbsolutePath().getParent());
        this.chatStopIds = template == null ? new int[0] : singleToken(template.eosToken());
        this.lastPositionOnly = logitsOfLastPositionOnly(model);
    }

    /** Whether /v1/chat/completions is served: the model directory has a chat template. */
    boolean hasChatTemplate() {
        return template != null;
    }

    Plan completions(JsonNode body) {
        CompletionRequest request = CompletionRequest.parse(body, limits);
        reportUnknown(body, CompletionRequest.COMPLETION_FIELDS, "/v1/completions");
        if (request.echo() && request.logprobs() >= 0 && lastPositionOnly) {
            throw ApiError.invalid("echo", "this graph outputs the logits of the last position only (a deployable "
                    + "freeze rewrite), so the prompt's log-probabilities cannot be given; echo without logprobs works");
        }
        List<int[]> ids = new ArrayList<>();
        for (CompletionRequest.Prompt p : request.prompts()) {
            ids.add(p.ids() != null ? checkedIds(p.ids()) : nonEmpty(model.tokenizer().encode(p.text())));
        }
        return new Plan(request, Choice.expand(request, ids, new int[0], seed(request)), ResponseFormat.COMPLETIONS);
    }

    Plan chat(JsonNode body) {
        if (template == null) {
            throw new ApiError(400, "invalid_request_error", null, "chat_template_missing", "model '" + model.id()
                    + "' has no chat template (no " + ChatTemplate.CONFIG_FILE + " with a chat_template beside the graph; "
                    + "'attnskip export --hf' carries the checkpoint's), so chat requests cannot be rendered; "
                    + "use /v1/completions");
        }
        CompletionRequest request = CompletionRequest.parseChat(body, limits);
        reportUnknown(body, CHAT_FIELDS, "/v1/chat/completions");
        String rendered = template.render(messages(body.get("messages")), true);
        // As transformers' apply_chat_template: the template writes the special tokens; none are added.
        int[] ids = model.tokenizer().encode(rendered);
        Tokenizer tok = model.tokenizer();
        if (tok.bos() >= 0 && ids.length > 0 && ids[0] == tok.bos()) {
            ids = Arrays.copyOfRange(ids, 1, ids.length);
        }
        request = request.withPrompts(List.of(new CompletionRequest.Prompt(rendered, null)));
        return new Plan(request, Choice.expand(request, List.of(nonEmpty(ids)), chatStopIds, seed(request)),
                ResponseFormat.CHAT);
    }

    /** The messages as the template sees them: every field the client sent, content as plain text. */
    private List<Map<String, Object>> messages(JsonNode messages) {
        if (messages == null || !messages.isArray() || messages.isEmpty()) {
            throw ApiError.invalid("messages", "messages must be a non-empty list of {role, content} objects");
        }
        List<Map<String, Object>> out = new ArrayList<>();
        for (JsonNode m : messages) {
            if (!m.isObject() || !m.path("role").isTextual()) {
                throw ApiError.invalid("messages", "each message must be an object with a string role, got " + m);
            }
            @SuppressWarnings("unchecked")
            Map<String, Object> message = new LinkedHashMap<>(json.convertValue(m, Map.class));
            message.put("content", content(m.get("content")));
            out.add(message);
        }
        return out;
    }

    /** A string, or OpenAI's list of content parts of which only text parts are supported. */
    private static String content(JsonNode c) {
        if (c == null || c.isNull()) {
            return "";
        }
        if (c.isTextual()) {
            return c.textValue();
        }
        if (c.isArray()) {
            StringBuilder text = new StringBuilder();
            for (JsonNode part : c) {
                if (!"text".equals(part.path("type").asText()) || !part.path("text").isTextual()) {
                    throw ApiError.invalid("messages", "only text content parts are supported, got " + part);
                }
                text.append(part.get("text").textValue());
            }
            return text.toString();
        }
        throw ApiError.invalid("messages", "a message's content must be a string or a list of text parts, got " + c);
    }

    private int[] checkedIds(int[] ids) {
        int vocab = model.session().vocabSize() > 0 ? model.session().vocabSize() : model.tokenizer().vocabSize();
        for (int id : ids) {
            if (vocab > 0 && id >= vocab) {
                throw ApiError.invalid("prompt", "token id " + id + " is outside the model's vocabulary of " + vocab);
            }
        }
        return ids;
    }

    private static int[] nonEmpty(int[] ids) {
        if (ids.length == 0) {
            throw ApiError.invalid("prompt", "the prompt is empty and the tokenizer has no BOS token to start from");
        }
        return ids;
    }

    /** The request's seed, or a fresh one: without a seed, sampling differs from request to request. */
    private static long seed(CompletionRequest request) {
        return request.seed() != null ? request.seed() : ThreadLocalRandom.current().nextLong();
    }

    private void reportUnknown(JsonNode body, Set<String> known, String endpoint) {
        body.fieldNames().forEachRemaining(name -> {
            if (!known.contains(name) && reported.add(endpoint + " " + name)) {
                System.err.println("attnskip: " + endpoint + " ignores the request field '" + name
                        + "' (said once per field)");
            }
        });
    }

    /** The id of a text that is exactly one token (the template's end of turn), else none. */
    private int[] singleToken(String text) {
        if (text == null) {
            return new int[0];
        }
        Tokenizer tok = model.tokenizer();
        int[] ids = tok.encode(text);
        int from = tok.bos() >= 0 && ids.length > 0 && ids[0] == tok.bos() ? 1 : 0;
        return ids.length - from == 1 ? new int[] {ids[from]} : new int[0];
    }

    /** A deployable freeze graph declares logits [batch, 1, vocab]: no logits for earlier prompt positions. */
    private static boolean logitsOfLastPositionOnly(ServedModel model) {
        try {
            var info = model.session().opened().session().getOutputInfo().get(model.session().io().logits()).getInfo();
            long[] shape = info instanceof TensorInfo t ? t.getShape() : new long[0];
            return shape.length == 3 && shape[1] == 1;
        } catch (OrtException e) {
            throw new IllegalStateException("cannot read the graph's outputs: " + e.getMessage(), e);
        }
    }
}
