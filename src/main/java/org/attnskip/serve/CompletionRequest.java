package org.attnskip.serve;

import com.fasterxml.jackson.databind.JsonNode;

import java.util.ArrayList;
import java.util.List;

/**
 * The fields of an OpenAI completions request that this server honours, checked for type and range.
 * Absent fields take OpenAI's defaults (max_tokens 16, temperature 1, top_p 1).
 */
public record CompletionRequest(String model, String prompt, int maxTokens, float temperature, float topP, long seed,
                                List<String> stop, boolean stream, boolean includeUsage) {
    private static final int MAX_STOP_SEQUENCES = 4; // as OpenAI

    public static CompletionRequest parse(JsonNode body, ServeLimits limits) {
        if (body == null || !body.isObject()) {
            throw ApiError.invalid(null, "the request body must be a JSON object");
        }
        String model = optionalString(body, "model");
        String prompt = prompt(body.get("prompt"));
        int maxTokens = ServeLimits.DEFAULT_MAX_TOKENS;
        JsonNode mt = body.get("max_tokens");
        if (mt != null && !mt.isNull()) {
            if (!mt.isIntegralNumber() || !mt.canConvertToInt()) {
                throw ApiError.invalid("max_tokens", "max_tokens must be an integer, got " + mt);
            }
            maxTokens = mt.intValue();
            if (maxTokens < 1) {
                throw ApiError.invalid("max_tokens", "max_tokens must be at least 1, got " + maxTokens);
            }
            if (maxTokens > limits.maxTokens()) {
                throw ApiError.invalid("max_tokens", "max_tokens must be at most " + limits.maxTokens() + ", got " + maxTokens);
            }
        }
        float temperature = number(body, "temperature", 1f, 0f, 2f);
        float topP = number(body, "top_p", 1f, 0f, 1f);
        if (body.has("top_p") && !body.get("top_p").isNull() && topP == 0f) {
            throw ApiError.invalid("top_p", "top_p must be greater than 0");
        }
        long seed = 0;
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
        for (String one : new String[] {"n", "best_of"}) {
            JsonNode n = body.get(one);
            if (n != null && !n.isNull() && !(n.isIntegralNumber() && n.intValue() == 1)) {
                throw ApiError.invalid(one, one + " must be 1: this server returns one choice per request");
            }
        }
        return new CompletionRequest(model, prompt, maxTokens, temperature, topP, seed, stop, stream, includeUsage);
    }

    private static String prompt(JsonNode p) {
        if (p == null || p.isNull()) {
            return ""; // OpenAI starts from <|endoftext|>; ours starts from BOS
        }
        if (p.isTextual()) {
            return p.textValue();
        }
        if (p.isArray() && p.size() == 1 && p.get(0).isTextual()) {
            return p.get(0).textValue();
        }
        throw ApiError.invalid("prompt", "prompt must be a string (or a list of exactly one string)");
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

    private static boolean bool(JsonNode body, String name) {
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
