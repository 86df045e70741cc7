package org.attnskip.serve;

import com.fasterxml.jackson.databind.JsonNode;

import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/**
 * The fields of an OpenAI completions (or chat completions) request that this server honours,
 * checked for type and range. Absent fields take OpenAI's defaults (max_tokens 16, temperature 1,
 * top_p 1, n 1).
 *
 * @param prompts  one or more prompts, each a text or token ids; a chat request has none until its
 *                 messages are rendered ({@link #withPrompts})
 * @param seed     null when absent: then every request draws its own
 * @param n        choices per prompt
 * @param logprobs alternatives listed per token; -1 for no log-probabilities at all
 */
public record CompletionRequest(String model, List<Prompt> prompts, int maxTokens, float temperature, float topP, Long seed,
                                List<String> stop, boolean stream, boolean includeUsage, int n, boolean echo,
                                int logprobs) {
    private static final int MAX_STOP_SEQUENCES = 4; // as OpenAI
    static final int MAX_N = 128; // as OpenAI
    static final int MAX_CHOICES = 256; // n times the prompts
    static final int MAX_LOGPROBS = 20; // as vLLM

    /** A prompt as sent: text to tokenize, or token ids taken as they are. */
    public record Prompt(String text, int[] ids) {
    }

    /** The fields of /v1/completions that are not ignored; others are logged once and ignored. */
    static final Set<String> COMPLETION_FIELDS = Set.of("model", "prompt", "max_tokens", "temperature", "top_p", "seed",
            "stop", "stream", "stream_options", "n", "best_of", "echo", "logprobs", "suffix", "presence_penalty",
            "frequency_penalty", "logit_bias", "user");

    public static CompletionRequest parse(JsonNode body, ServeLimits limits) {
        requireObject(body);
        List<Prompt> prompts = prompts(body.get("prompt"));
        boolean echo = bool(body, "echo");
        int maxTokens = maxTokens(body, "max_tokens", limits, echo ? 0 : 1);
        int logprobs = -1;
        JsonNode lp = body.get("logprobs");
        if (lp != null && !lp.isNull()) {
            logprobs = integer(lp, "logprobs", 0, MAX_LOGPROBS);
        }
        unsupported(body, "suffix", n -> n.isTextual() && n.textValue().isEmpty());
        CompletionRequest r = common(body, limits, prompts, maxTokens, echo, logprobs);
        JsonNode bestOf = body.get("best_of");
        if (bestOf != null && !bestOf.isNull() && !(bestOf.isIntegralNumber() && bestOf.intValue() == r.n())) {
            throw ApiError.invalid("best_of", "best_of must equal n: this server returns every choice it generates");
        }
        if (r.stream() && logprobs >= 0) {
            throw ApiError.invalid("logprobs", "logprobs are not streamed by this server; ask without stream");
        }
        return r;
    }

    /** The fields of /v1/chat/completions besides the messages; the prompts come from rendering them. */
    static CompletionRequest parseChat(JsonNode body, ServeLimits limits) {
        requireObject(body);
        JsonNode mct = body.get("max_completion_tokens");
        int maxTokens = maxTokens(body, mct != null && !mct.isNull() ? "max_completion_tokens" : "max_tokens", limits, 1);
        int logprobs = -1;
        if (bool(body, "logprobs")) {
            JsonNode top = body.get("top_logprobs");
            logprobs = top == null || top.isNull() ? 0 : integer(top, "top_logprobs", 0, MAX_LOGPROBS);
        }
        CompletionRequest r = common(body, limits, List.of(), maxTokens, false, logprobs);
        if (r.stream() && logprobs >= 0) {
            throw ApiError.invalid("logprobs", "logprobs are not streamed by this server; ask without stream");
        }
        return r;
    }

    /** The same request for other prompts (a chat request's rendered messages). */
    CompletionRequest withPrompts(List<Prompt> rendered) {
        return new CompletionRequest(model, rendered, maxTokens, temperature, topP, seed, stop, stream, includeUsage, n,
                echo, logprobs);
    }

    private static CompletionRequest common(JsonNode body, ServeLimits limits, List<Prompt> prompts, int maxTokens,
                                            boolean echo, int logprobs) {
        String model = optionalString(body, "model");
        float temperature = number(body, "temperature", 1f, 0f, 2f);
        float topP = number(body, "top_p", 1f, 0f, 1f);
        if (body.has("top_p") && !body.get("top_p").isNull() && topP == 0f) {
            throw ApiError.invalid("top_p", "top_p must be greater than 0");
        }
        Long seed = null;
        JsonNode s = body.get("seed");
        if (s != null && !s.isNull()) {
            if (!s.isIntegralNumber() || !s.canConvertToLong()) {
                throw ApiError.invalid("seed", "seed must be an integer, got " + s);
            }
            seed = s.longValue();
        }
        List<String> stop = stop(body.get("stop"));
        boolean stream = bool(body, "stream");
        boolean includeUsage = false;
        JsonNode so = body.get("stream_options");
        if (so != null && !so.isNull()) {
            if (!so.isObject()) {
                throw ApiError.invalid("stream_options", "stream_options must be an object");
            }
            includeUsage = bool(so, "include_usage");
        }
        int n = 1;
        JsonNode nn = body.get("n");
        if (nn != null && !nn.isNull()) {
            n = integer(nn, "n", 1, MAX_N);
        }
        if ((long) n * Math.max(1, prompts.size()) > MAX_CHOICES) {
            throw ApiError.invalid("n", "n times the number of prompts must be at most " + MAX_CHOICES + ", got "
                    + n + " x " + prompts.size());
        }
        // Neutral values of fields this server does not implement are accepted, as clients send them by default.
        for (String penalty : new String[] {"presence_penalty", "frequency_penalty"}) {
            unsupported(body, penalty, v -> v.isNumber() && v.doubleValue() == 0);
        }
        unsupported(body, "logit_bias", v -> v.isObject() && v.isEmpty());
        return new CompletionRequest(model, prompts, maxTokens, temperature, topP, seed, stop, stream, includeUsage, n,
                echo, logprobs);
    }

    private static void requireObject(JsonNode body) {
        if (body == null || !body.isObject()) {
            throw ApiError.invalid(null, "the request body must be a JSON object");
        }
    }

    private static int maxTokens(JsonNode body, String name, ServeLimits limits, int min) {
        JsonNode mt = body.get(name);
        if (mt == null || mt.isNull()) {
            return ServeLimits.DEFAULT_MAX_TOKENS;
        }
        if (!mt.isIntegralNumber() || !mt.canConvertToInt()) {
            throw ApiError.invalid(name, name + " must be an integer, got " + mt);
        }
        int maxTokens = mt.intValue();
        if (maxTokens < min) {
            throw ApiError.invalid(name, name + " must be at least " + min + (min == 0 ? "" : " (0 only with echo)")
                    + ", got " + maxTokens);
        }
        if (maxTokens > limits.maxTokens()) {
            throw ApiError.invalid(name, name + " must be at most " + limits.maxTokens() + ", got " + maxTokens);
        }
        return maxTokens;
    }

    /** A field this server cannot honour: accepted only when absent, null or {@code neutral}. */
    private static void unsupported(JsonNode body, String name, java.util.function.Predicate<JsonNode> neutral) {
        JsonNode v = body.get(name);
        if (v != null && !v.isNull() && !neutral.test(v)) {
            throw ApiError.invalid(name, name + " is not supported by this server; leave it out");
        }
    }

    /**
     * A string, a list of strings, a list of token ids, or a list of such lists: one prompt each.
     * An absent prompt is the empty text (OpenAI starts from &lt;|endoftext|&gt;; ours starts from BOS).
     */
    private static List<Prompt> prompts(JsonNode p) {
        List<Prompt> out = new ArrayList<>();
        if (p == null || p.isNull()) {
            out.add(new Prompt("", null));
        } else if (p.isTextual()) {
            out.add(new Prompt(p.textValue(), null));
        } else if (p.isArray() && !p.isEmpty() && p.get(0).isIntegralNumber()) {
            out.add(new Prompt(null, ids(p)));
        } else if (p.isArray() && !p.isEmpty()) {
            for (JsonNode one : p) {
                if (one.isTextual()) {
                    out.add(new Prompt(one.textValue(), null));
                } else if (one.isArray() && !one.isEmpty()) {
                    out.add(new Prompt(null, ids(one)));
                } else {
                    throw ApiError.invalid("prompt", "a list of prompts holds strings or non-empty lists of token ids");
                }
            }
        } else {
            throw ApiError.invalid("prompt", "prompt must be a string, a list of strings, a list of token ids, "
                    + "or a list of lists of token ids");
        }
        if (out.size() > MAX_CHOICES) {
            throw ApiError.invalid("prompt", "at most " + MAX_CHOICES + " prompts per request, got " + out.size());
        }
        return out;
    }

    private static int[] ids(JsonNode list) {
        int[] ids = new int[list.size()];
        for (int i = 0; i < ids.length; i++) {
            JsonNode id = list.get(i);
            if (!id.isIntegralNumber() || !id.canConvertToInt() || id.intValue() < 0) {
                throw ApiError.invalid("prompt", "token ids must be non-negative integers, got " + id);
            }
            ids[i] = id.intValue();
        }
        return ids;
    }

    private static int integer(JsonNode n, String name, int min, int max) {
        if (!n.isIntegralNumber() || !n.canConvertToInt() || n.intValue() < min || n.intValue() > max) {
            throw ApiError.invalid(name, name + " must be an integer from " + min + " to " + max + ", got " + n);
        }
        return n.intValue();
    }

    private static String optionalString(JsonNode body, String name) {
        JsonNode n = body.get(name);
        if (n == null || n.isNull()) {
            return null;
        }
        if (!n.isTextual()) {
            throw ApiError.invalid(name, name + " must be a string, got " + n);
        }
        return n.textValue();
    }

    private static float number(JsonNode body, String name, float absent, float min, float max) {
        JsonNode n = body.get(name);
        if (n == null || n.isNull()) {
            return absent;
        }
        if (!n.isNumber()) {
            throw ApiError.invalid(name, name + " must be a number, got " + n);
        }
        double v = n.doubleValue();
        if (!(v >= min && v <= max)) {
            throw ApiError.invalid(name, name + " must be between " + min + " and " + max + ", got " + v);
        }
        return (float) v;
    }

    static boolean bool(JsonNode body, String name) {
        JsonNode n = body.get(name);
        if (n == null || n.isNull()) {
            return false;
        }
        if (!n.isBoolean()) {
            throw ApiError.invalid(name, name + " must be true or false, got " + n);
        }
        return n.booleanValue();
    }

    private static List<String> stop(JsonNode n) {
        List<String> out = new ArrayList<>();
        if (n == null || n.isNull()) {
            return out;
        }
        if (n.isTextual()) {
            out.add(n.textValue());
        } else if (n.isArray()) {
            for (JsonNode e : n) {
                if (!e.isTextual()) {
                    throw ApiError.invalid("stop", "stop must be a string or a list of strings");
                }
                out.add(e.textValue());
            }
        } else {
            throw ApiError.invalid("stop", "stop must be a string or a list of strings");
        }
        if (out.size() > MAX_STOP_SEQUENCES) {
            throw ApiError.invalid("stop", "at most " + MAX_STOP_SEQUENCES + " stop sequences, got " + out.size());
        }
        if (out.stream().anyMatch(String::isEmpty)) {
            throw ApiError.invalid("stop", "stop sequences must not be empty");
        }
        return out;
    }
}
