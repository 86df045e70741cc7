package org.attnskip.serve;

import com.fasterxml.jackson.databind.node.ObjectNode;

/**
 * How one API lays out a choice: /v1/completions ({@code text}) or /v1/chat/completions (an
 * assistant {@code message}, and {@code delta}s when streamed).
 */
enum ResponseFormat {
    COMPLETIONS("cmpl-", "text_completion", "text_completion"),
    CHAT("chatcmpl-", "chat.completion", "chat.completion.chunk");

    final String idPrefix;
    final String object;
    final String chunkObject;

    ResponseFormat(String idPrefix, String object, String chunkObject) {
        this.idPrefix = idPrefix;
        this.object = object;
        this.chunkObject = chunkObject;
    }

    /** A whole choice. */
    void choice(ObjectNode node, CompletionEngine.Completion c) {
        node.put("index", c.choice().index());
        if (this == COMPLETIONS) {
            node.put("text", c.text());
            node.set("logprobs", c.trace() == null ? null : LogprobsJson.completions(c.trace()));
        } else {
            ObjectNode message = node.putObject("message");
            message.put("role", "assistant");
            message.put("content", c.text());
            node.set("logprobs", c.trace() == null ? null : LogprobsJson.chat(c.trace()));
        }
        node.put("finish_reason", c.finishReason());
    }

    /**
     * A streamed piece of a choice: text, or the end when finishReason is not null. A chat stream
     * opens each choice with a delta that carries only the role (text null).
     */
    void chunk(ObjectNode node, int index, String text, String finishReason) {
        node.put("index", index);
        if (this == COMPLETIONS) {
            node.put("text", text == null ? "" : text);
        } else {
            ObjectNode delta = node.putObject("delta");
            if (text == null && finishReason == null) {
                delta.put("role", "assistant");
                delta.put("content", "");
            } else if (text != null) {
                delta.put("content", text);
            }
        }
        node.putNull("logprobs");
        node.put("finish_reason", finishReason);
    }
}
