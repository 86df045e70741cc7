package org.attnskip.serve;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.nio.charset.StandardCharsets;

/** A choice's log-probabilities in the shapes OpenAI's two APIs give them. */
final class LogprobsJson {
    private static final JsonNodeFactory JSON = JsonNodeFactory.instance;

    private LogprobsJson() {
    }

    /**
     * The completions API's (legacy) shape: parallel lists tokens, token_logprobs, top_logprobs
     * (text to log-probability: the k alternatives, and the chosen token when it is not among them)
     * and text_offset. The first prompt token of an echo has null in both log-probability lists.
     */
    static ObjectNode completions(TokenTrace trace) {
        ObjectNode out = JSON.objectNode();
        ArrayNode tokens = out.putArray("tokens");
        ArrayNode tokenLogprobs = out.putArray("token_logprobs");
        ArrayNode top = out.putArray("top_logprobs");
        ArrayNode offsets = out.putArray("text_offset");
        for (TokenTrace.Entry e : trace.entries()) {
            tokens.add(e.text());
            offsets.add(e.textOffset());
            if (e.logprob() == null) {
                tokenLogprobs.addNull();
                top.addNull();
                continue;
            }
            tokenLogprobs.add(e.logprob().logprob());
            ObjectNode alternatives = top.addObject();
            for (int i = 0; i < e.topTexts().length; i++) {
                if (!alternatives.has(e.topTexts()[i])) { // two ids of the same text: the likelier one is listed
                    alternatives.put(e.topTexts()[i], e.logprob().topLogprobs()[i]);
                }
            }
            if (!alternatives.has(e.text())) {
                alternatives.put(e.text(), e.logprob().logprob());
            }
        }
        return out;
    }

    /** The chat API's shape: {"content": [{token, logprob, bytes, top_logprobs: [{token, logprob, bytes}]}]}. */
    static ObjectNode chat(TokenTrace trace) {
        ObjectNode out = JSON.objectNode();
        ArrayNode content = out.putArray("content");
        for (TokenTrace.Entry e : trace.entries()) {
            ObjectNode token = entry(content.addObject(), e.text(), e.logprob().logprob());
            ArrayNode top = token.putArray("top_logprobs");
            for (int i = 0; i < e.topTexts().length; i++) {
                entry(top.addObject(), e.topTexts()[i], e.logprob().topLogprobs()[i]);
            }
        }
        return out;
    }

    private static ObjectNode entry(ObjectNode node, String text, double logprob) {
        node.put("token", text);
        node.put("logprob", logprob);
        ArrayNode bytes = node.putArray("bytes");
        for (byte b : text.getBytes(StandardCharsets.UTF_8)) {
            bytes.add(b & 0xff);
        }
        return node;
    }
}
