package org.attnskip.serve;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A small closed-loop load generator for 'attnskip serve' (not a test; run by hand):
 * {@code java -cp target/test-classes:target/attnskip.jar org.attnskip.serve.LoadClient URL CLIENTS REQUESTS MAX_TOKENS}.
 * Each client sends greedy completions back to back; prints requests/s, tokens/s and latency percentiles (p50, p95, p99).
 */
public final class LoadClient {
    public static void main(String[] args) throws Exception {
        String url = args[0] + "/v1/completions";
        int clients = Integer.parseInt(args[1]);
        int requests = Integer.parseInt(args[2]);
        int maxTokens = Integer.parseInt(args[3]);
        String[] prompts = {"Once upon a time", "The cat", "Lily went", "Tom had a", "One day", "The sun", "A big dog", "Mom said"};
        ObjectMapper json = new ObjectMapper();
        HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
        AtomicInteger next = new AtomicInteger();
        AtomicInteger tokens = new AtomicInteger();
        AtomicInteger failures = new AtomicInteger();
        long[] latencies = new long[requests];
        ExecutorService pool = Executors.newFixedThreadPool(clients);
        long start = System.nanoTime();
        List<Future<?>> done = new ArrayList<>();
        for (int c = 0; c < clients; c++) {
            done.add(pool.submit(() -> {
                int i;
                while ((i = next.getAndIncrement()) < requests) {
                    String body = json.createObjectNode().put("prompt", prompts[i % prompts.length])
                            .put("max_tokens", maxTokens).put("temperature", 0).toString();
                    long t0 = System.nanoTime();
                    try {
                        HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create(url))
                                .POST(HttpRequest.BodyPublishers.ofString(body)).build(), HttpResponse.BodyHandlers.ofString());
                        latencies[i] = System.nanoTime() - t0;
                        if (r.statusCode() != 200) {
                            failures.incrementAndGet();
                            continue;
                        }
                        JsonNode usage = json.readTree(r.body()).get("usage");
                        tokens.addAndGet(usage.get("completion_tokens").asInt());
                    } catch (Exception e) {
                        failures.incrementAndGet();
                    }
                }
                return null;
            }));
        }
        for (Future<?> f : done) {
            f.get();
        }
        double seconds = (System.nanoTime() - start) / 1e9;
        pool.shutdown();
        long[] sorted = latencies.clone();
        Arrays.sort(sorted);
        System.out.printf("requests %d (failed %d) in %.2f s: %.1f req/s, %.0f completion tok/s, latency p50 %.1f ms, "
                        + "p95 %.1f ms, p99 %.1f ms%n", requests, failures.get(), seconds, requests / seconds,
                tokens.get() / seconds, sorted[(int) (0.50 * (requests - 1))] / 1e6,
                sorted[(int) Math.ceil(0.95 * (requests - 1))] / 1e6, sorted[(int) Math.ceil(0.99 * (requests - 1))] / 1e6);
    }
}
