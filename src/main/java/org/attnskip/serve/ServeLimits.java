package org.attnskip.serve;

/**
 * What one server accepts: request body size, prompt length and max_tokens caps, how many
 * completions run at once, how many wait in the queue before new ones are turned away, and how
 * many of the running ones may share one decode step (1: each decodes alone).
 */
public record ServeLimits(long maxBodyBytes, int maxPromptTokens, int maxTokens, int maxConcurrency, int queueCapacity,
                          int maxBatch) {
    public static final int DEFAULT_MAX_TOKENS = 16; // OpenAI's default when max_tokens is absent

    public ServeLimits {
        if (maxBodyBytes <= 0 || maxPromptTokens <= 0 || maxTokens <= 0 || maxConcurrency <= 0 || queueCapacity < 0
                || maxBatch <= 0) {
            throw new IllegalArgumentException("limits must be positive (queue capacity may be 0)");
        }
    }
}
