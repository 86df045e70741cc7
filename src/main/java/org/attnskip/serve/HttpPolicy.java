package org.attnskip.serve;

import io.javalin.config.JavalinConfig;
import io.javalin.http.Context;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.List;

/**
 * What the HTTP layer guards against abuse: an API key (every route but /health then needs
 * {@code Authorization: Bearer KEY}), CORS only for origins named, and slow clients. A blocked read
 * or write idle for {@code idleTimeoutMillis} fails; a request body arriving slower than
 * {@code minBodyBytesPerSecond} is cut off with 408. Bodies are read on Jetty's threads, never on a
 * generation worker, so a slow client holds no worker.
 */
public record HttpPolicy(String apiKey, List<String> corsOrigins, long idleTimeoutMillis, long minBodyBytesPerSecond) {
    public static final HttpPolicy DEFAULT = new HttpPolicy(null, List.of(), 30_000, 256);

    public HttpPolicy {
        corsOrigins = List.copyOf(corsOrigins);
        if (apiKey != null && apiKey.isBlank()) {
            throw new IllegalArgumentException("an API key must not be blank");
        }
    }

    void apply(JavalinConfig config) {
        // Jetty's own shutdown hook would cut running streams on SIGTERM; the server drains itself instead
        config.jetty.modifyServer(server -> server.setStopAtShutdown(false));
        config.jetty.modifyHttpConfiguration(http -> {
            http.setIdleTimeout(idleTimeoutMillis);
            http.setMinRequestDataRate(minBodyBytesPerSecond);
        });
        if (apiKey != null) {
            config.routes.before(this::authorize);
        }
        if (!corsOrigins.isEmpty()) {
            config.bundledPlugins.enableCors(cors -> cors.addRule(rule -> corsOrigins.forEach(rule::allowHost)));
        }
    }

    private void authorize(Context ctx) {
        if (ctx.path().equals("/health") || ctx.method().name().equals("OPTIONS")) {
            return; // probes, and CORS preflights (which carry no credentials), pass
        }
        String header = ctx.header("Authorization");
        String given = header != null && header.startsWith("Bearer ") ? header.substring(7).trim() : "";
        // constant time: the comparison does not reveal how much of the key was right
        if (!MessageDigest.isEqual(given.getBytes(StandardCharsets.UTF_8), apiKey.getBytes(StandardCharsets.UTF_8))) {
            ctx.header("WWW-Authenticate", "Bearer");
            throw new ApiError(401, "invalid_request_error", null, "invalid_api_key",
                    header == null ? "this server needs an API key: send 'Authorization: Bearer KEY'"
                            : "the API key given is not valid");
        }
    }

    /** The answer to a request body that could not be read: too slow (408) or too large (413). */
    static ApiError bodyReadFailure(RuntimeException e, ApiError tooLarge) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            String m = String.valueOf(t.getMessage()).toLowerCase(java.util.Locale.ROOT);
            if (t instanceof java.util.concurrent.TimeoutException || m.contains("data rate") || m.contains("timeout")
                    || m.contains("idle")) {
                return new ApiError(408, "invalid_request_error", null, "request_timeout",
                        "the request body arrived too slowly");
            }
        }
        return tooLarge;
    }
}
