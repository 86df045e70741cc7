package org.attnskip.cli;

import org.attnskip.onnx.BadInputException;
import org.attnskip.runtime.Device;
import org.attnskip.serve.CompletionServer;
import org.attnskip.serve.HttpPolicy;
import org.attnskip.serve.ServeLimits;
import org.attnskip.serve.ServedModel;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.net.InetAddress;
import java.net.UnknownHostException;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;

@Command(name = "serve",
        description = {"Serve a graph over an OpenAI-compatible HTTP API: POST /v1/completions and /v1/chat/completions",
                "(stream or not; chat through the tokenizer_config.json chat template beside the graph),",
                "GET /v1/models, /health and /metrics (Prometheus). SIGTERM lets running requests finish, then exits."})
public final class ServeCommand implements Callable<Integer> {
    @Parameters(index = "0", paramLabel = "MODEL",
            description = "a model directory from 'attnskip export'/'optimize', or an .onnx file (then --tokenizer is needed)")
    Path model;

    @Option(names = "--tokenizer", paramLabel = "FILE", description = "tokenizer.json or llama2.c's tokenizer.bin")
    Path tokenizer;

    @Option(names = "--host", defaultValue = "127.0.0.1", description = "address to bind (default: ${DEFAULT-VALUE})")
    String host;

    @Option(names = "--port", defaultValue = "8080", description = "port; 0 picks a free one (default: ${DEFAULT-VALUE})")
    int port;

    @Option(names = "--device", defaultValue = "auto", paramLabel = "cpu|cuda|auto", description = "(default: ${DEFAULT-VALUE})")
    String device;

    @Option(names = "--max-concurrency", defaultValue = "8", paramLabel = "N",
            description = "requests generated at once, one worker each (default: ${DEFAULT-VALUE})")
    int maxConcurrency;

    @Option(names = "--queue", defaultValue = "64", paramLabel = "N",
            description = "requests that may wait for a worker; beyond them the answer is 429 (default: ${DEFAULT-VALUE})")
    int queue;

    @Option(names = "--max-batch", defaultValue = "8", paramLabel = "N",
            description = {"running requests whose decode steps share one run of the graph; 1 decodes each alone.",
                    "Used when the graph's batch dimension is open (default: ${DEFAULT-VALUE})"})
    int maxBatch;

    @Option(names = "--max-prompt-tokens", defaultValue = "4096", paramLabel = "N", description = "(default: ${DEFAULT-VALUE})")
    int maxPromptTokens;

    @Option(names = "--max-tokens-cap", defaultValue = "4096", paramLabel = "N",
            description = "largest max_tokens a request may ask for (default: ${DEFAULT-VALUE})")
    int maxTokensCap;

    @Option(names = "--max-body-bytes", defaultValue = "1048576", paramLabel = "N", description = "(default: ${DEFAULT-VALUE})")
    long maxBodyBytes;

    @Option(names = "--drain-seconds", defaultValue = "30", paramLabel = "S",
            description = "how long SIGTERM waits for running requests (default: ${DEFAULT-VALUE})")
    long drainSeconds;

    @Option(names = "--api-key", paramLabel = "KEY", defaultValue = "${env:ATTNSKIP_API_KEY}",
            description = {"require 'Authorization: Bearer KEY' on every route but /health (default: $ATTNSKIP_API_KEY;",
                    "prefer the variable: a command line is visible to other users). Required off loopback"})
    String apiKey;

    @Option(names = "--cors-origin", paramLabel = "ORIGIN",
            description = "answer cross-origin requests from this origin (repeatable); none by default")
    java.util.List<String> corsOrigins = new java.util.ArrayList<>();

    @Option(names = "--idle-timeout", defaultValue = "30", paramLabel = "S",
            description = "close a connection whose read or write is blocked this long (default: ${DEFAULT-VALUE})")
    long idleTimeoutSeconds;

    @Option(names = "--min-body-rate", defaultValue = "256", paramLabel = "B",
            description = "cut off (408) a request body arriving slower than B bytes/s (default: ${DEFAULT-VALUE})")
    long minBodyRate;

    @Override
    public Integer call() throws InterruptedException {
        HttpPolicy policy = httpPolicy();
        if (maxConcurrency < 1 || maxBatch < 1 || queue < 0 || maxPromptTokens < 1 || maxTokensCap < 1 || maxBodyBytes < 1 || port < 0) {
            throw new BadInputException("--max-concurrency, --max-batch, --max-prompt-tokens, --max-tokens-cap and --max-body-bytes "
                    + "must be positive, --queue and --port not negative");
        }
        ServeLimits limits = new ServeLimits(maxBodyBytes, maxPromptTokens, maxTokensCap, maxConcurrency, queue, maxBatch);
        ServedModel served = ServedModel.open(model, tokenizer, Device.parse(device));
        if (served.session().opened().fallbackNote() != null) {
            System.err.println("attnskip: " + served.session().opened().fallbackNote());
        }
        CompletionServer server = new CompletionServer(served, limits);
        int bound;
        try {
            bound = server.start(host, port, policy);
        } catch (RuntimeException e) {
            server.close();
            served.close();
            throw new BadInputException("cannot listen on " + host + ":" + port + ": " + e.getMessage(), e);
        }
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            System.err.println("attnskip: draining in-flight requests");
            server.drainAndStop(drainSeconds);
            served.close();
            stopped.countDown();
            System.err.println("attnskip: drained, exiting");
            System.err.flush();
            // a drained shutdown is a clean exit: 0, not the JVM's 143 for SIGTERM
            Runtime.getRuntime().halt(0);
        }, "attnskip-drain"));
        System.err.println("attnskip: serving " + served.id() + " on http://" + host + ":" + bound
                + " (" + served.session().opened().device().cliName() + ", " + maxConcurrency + " workers, "
                + (server.batchingNote() == null ? "decode steps shared by up to " + server.decodeBatchRows() + " requests)"
                : server.batchingNote() + ")"));
        stopped.await();
        return 0;
    }

    /** An API key is required unless the server listens on loopback only. */
    private HttpPolicy httpPolicy() {
        String key = apiKey == null || apiKey.isBlank() ? null : apiKey.strip();
        if (key == null && !isLoopback(host)) {
            throw new BadInputException("listening on " + host + " (not loopback) needs an API key: set ATTNSKIP_API_KEY "
                    + "or give --api-key");
        }
        if (idleTimeoutSeconds < 1 || minBodyRate < 0) {
            throw new BadInputException("--idle-timeout must be positive and --min-body-rate not negative");
        }
        return new HttpPolicy(key, corsOrigins, idleTimeoutSeconds * 1000, minBodyRate);
    }

    private static boolean isLoopback(String host) {
        try {
            for (InetAddress a : InetAddress.getAllByName(host)) {
                if (!a.isLoopbackAddress()) {
                    return false;
                }
            }
            return true;
        } catch (UnknownHostException e) {
            throw new BadInputException("unknown host " + host);
        }
    }
}
