package org.attnskip.serve;

/**
 * What one server accepts: request body size, prompt length and max_tokens caps, how many
 * completions run at once and how many wait in the queue before new ones are turned away.
 */
public record ServeLimits(long maxBodyBytes, int maxPromptTokens, int maxTokens, int maxConcurrency, int queueCapacity) {
    public static final int DEFAULT_MAX_TOKENS = 16; // OpenAI's default when max_tokens is absent

    public ServeLimits {
        if (maxBodyBytes <= 0 || maxPromptTokens <= 0 || maxTokens <= 0 || maxConcurrency <= 0 || queueCapacity < 0) {
            throw new IllegalArgumentException("limits must be positive (queue capacity may be 0)");
        }
    }

    public static ServeLimits defaults(int maxConcurrency) {
        return new ServeLimits(1 << 20, 4096, 4096, maxConcurrency, 64);
    }
}
