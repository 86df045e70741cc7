package org.attnskip.serve;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.attnskip.runtime.DecoderSession;
import org.attnskip.runtime.Device;
import org.attnskip.runtime.Generator;
import org.attnskip.runtime.ModelLocation;
import org.attnskip.runtime.Tokenizer;
import org.attnskip.runtime.TokenizerFiles;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A mixed load against a running 'attnskip serve' on loopback: greedy completions (each text checked
 * against what the generation loop of 'attnskip generate' gives alone), streams read to the end
 * (same check), streams the client drops after the first event, and malformed bodies (each must get
 * a 4xx). Shared by ServeSoakTest (bounded) and SoakClient (bench/soak.sh).
 */
final class SoakRun {
    static final String[] PROMPTS = {"Once upon a time", "The cat", "Lily went", "Tom had a", "One day", "The sun",
            "A big dog", "Mom said"};
    static final int[] MAX_TOKENS = {8, 16, 32};
    private static final ObjectMapper JSON = new ObjectMapper();

    /** Bodies that must each be refused with a 4xx. */
    static final List<String> MALFORMED = List.of("{", "[]", "null", "\"text\"", "{\"prompt\":5}",
            "{\"prompt\":\"a\",\"max_tokens\":-1}", "{\"prompt\":\"a\",\"max_tokens\":\"x\"}",
            "{\"prompt\":\"a\",\"temperature\":9}", "{\"prompt\":\"a\",\"stop\":[1,2]}", "[".repeat(5000),
            "{\"prompt\":\"a\",\"max_tokens\":1e400}", "{\"prompt\":\"" + "word ".repeat(3000) + "\"}",
            "{\"prompt\":\"a\",\"stream\":\"yes\"}", "{\"prompt\":\"a\",\"top_p\":0}", "{\"a\":\"\\ud800\"");

    record Report(int requests, int greedy, int streamed, int dropped, int malformed, int wrongTexts,
                  int malformedNot4xx, int otherFailures, double p50Millis, double p99Millis, List<String> problems) {
        @Override
        public String toString() {
            return String.format("requests %d: greedy %d, streamed %d, dropped %d, malformed %d; wrong texts %d, "
                            + "malformed without 4xx %d, other failures %d; greedy latency p50 %.1f ms, p99 %.1f ms",
                    requests, greedy, streamed, dropped, malformed, wrongTexts, malformedNot4xx, otherFailures,
                    p50Millis, p99Millis);
        }
    }

    private SoakRun() {
    }

    /** What the generation loop of 'attnskip generate -t 0' gives after each prompt, for each max_tokens. */
    static Map<String, String> expectedTexts(Path modelDir) throws Exception {
        Map<String, String> out = new HashMap<>();
        ModelLocation where = ModelLocation.resolve(modelDir, null);
        try (DecoderSession session = DecoderSession.open(where.modelFile(), Device.CPU)) {
            Tokenizer tok = TokenizerFiles.open(where.tokenizerFile(), where.tokenizerKind(), where.vocabSize());
            Generator g = new Generator(session, tok);
            for (String prompt : PROMPTS) {
                int promptLength = tok.encode(prompt).length;
                String echo = g.generate(prompt, Generator.Options.greedy(promptLength - 1), piece -> { }).text();
                for (int n : MAX_TOKENS) {
                    String full = g.generate(prompt, Generator.Options.greedy(promptLength - 1 + n), piece -> { }).text();
                    out.put(prompt + "|" + n, full.substring(echo.length()));
                }
            }
        }
        return out;
    }

    static Report run(String host, int port, Map<String, String> expected, int requests, int concurrency, long seed)
            throws Exception {
        HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
        URI url = URI.create("http://" + host + ":" + port + "/v1/completions");
        AtomicInteger next = new AtomicInteger();
        AtomicInteger greedy = new AtomicInteger(), streamed = new AtomicInteger(), dropped = new AtomicInteger();
        AtomicInteger malformed = new AtomicInteger(), wrong = new AtomicInteger(), not4xx = new AtomicInteger();
        AtomicInteger other = new AtomicInteger();
        List<Long> latencies = Collections.synchronizedList(new ArrayList<>());
        List<String> problems = Collections.synchronizedList(new ArrayList<>());
        ExecutorService pool = Executors.newFixedThreadPool(concurrency);
        List<Future<?>> clients = new ArrayList<>();
        for (int c = 0; c < concurrency; c++) {
            clients.add(pool.submit(() -> {
                int i;
                while ((i = next.getAndIncrement()) < requests) {
                    Random r = new Random(seed * 7919 + i);
                    String prompt = PROMPTS[r.nextInt(PROMPTS.length)];
                    int n = MAX_TOKENS[r.nextInt(MAX_TOKENS.length)];
                    String want = expected.get(prompt + "|" + n);
                    int kind = r.nextInt(20);
                    try {
                        if (kind < 11) {
                            long t0 = System.nanoTime();
                            HttpResponse<String> resp = http.send(post(url, body(prompt, n, false)), HttpResponse.BodyHandlers.ofString());
                            latencies.add(System.nanoTime() - t0);
                            greedy.incrementAndGet();
                            String text = resp.statusCode() == 200 ? JSON.readTree(resp.body()).at("/choices/0/text").asText() : null;
                            if (!want.equals(text)) {
                                wrong.incrementAndGet();
                                problems.add("greedy " + resp.statusCode() + " for '" + prompt + "'/" + n + ": " + text);
                            }
                        } else if (kind < 14) {
                            streamed.incrementAndGet();
                            HttpResponse<java.util.stream.Stream<String>> resp = http.send(post(url, body(prompt, n, true)),
                                    HttpResponse.BodyHandlers.ofLines());
                            StringBuilder text = new StringBuilder();
                            for (String line : (Iterable<String>) resp.body()::iterator) {
                                if (line.startsWith("data: {")) {
                                    JsonNode t = JSON.readTree(line.substring(6)).at("/choices/0/text");
                                    text.append(t.isMissingNode() ? "" : t.asText());
                                }
                            }
                            if (resp.statusCode() != 200 || !want.contentEquals(text)) {
                                wrong.incrementAndGet();
                                problems.add("stream for '" + prompt + "'/" + n + ": " + text);
                            }
                        } else if (kind < 16) {
                            dropped.incrementAndGet();
                            dropAfterFirstEvent(host, port, body(prompt, 32, true));
                        } else {
                            malformed.incrementAndGet();
                            String bad = MALFORMED.get(r.nextInt(MALFORMED.size()));
                            HttpResponse<String> resp = http.send(post(url, bad), HttpResponse.BodyHandlers.ofString());
                            if (resp.statusCode() < 400 || resp.statusCode() >= 500) {
                                not4xx.incrementAndGet();
                                problems.add("malformed body got " + resp.statusCode() + ": " + bad.substring(0, Math.min(60, bad.length())));
                            }
                        }
                    } catch (Exception e) {
                        other.incrementAndGet();
                        problems.add("request " + i + ": " + e);
                    }
                }
                return null;
            }));
        }
        for (Future<?> f : clients) {
            f.get();
        }
        pool.shutdown();
        List<Long> sorted = new ArrayList<>(latencies);
        Collections.sort(sorted);
        double p50 = sorted.isEmpty() ? 0 : sorted.get((int) (0.50 * (sorted.size() - 1))) / 1e6;
        double p99 = sorted.isEmpty() ? 0 : sorted.get((int) Math.ceil(0.99 * (sorted.size() - 1))) / 1e6;
        return new Report(requests, greedy.get(), streamed.get(), dropped.get(), malformed.get(), wrong.get(),
                not4xx.get(), other.get(), p50, p99, List.copyOf(problems));
    }

    private static HttpRequest post(URI url, String body) {
        return HttpRequest.newBuilder(url).header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(body)).build();
    }

    private static String body(String prompt, int maxTokens, boolean stream) {
        return JSON.createObjectNode().put("prompt", prompt).put("max_tokens", maxTokens).put("temperature", 0)
                .put("stream", stream).toString();
    }

    /** A client that goes away after the first event of its stream. */
    private static void dropAfterFirstEvent(String host, int port, String body) throws Exception {
        try (Socket s = new Socket(host, port)) {
            byte[] b = body.getBytes(StandardCharsets.UTF_8);
            s.getOutputStream().write(("POST /v1/completions HTTP/1.1\r\nHost: " + host + "\r\nContent-Type: application/json\r\n"
                    + "Content-Length: " + b.length + "\r\n\r\n").getBytes(StandardCharsets.US_ASCII));
            s.getOutputStream().write(b);
            s.getOutputStream().flush();
            s.setSoTimeout(30_000);
            BufferedReader in = new BufferedReader(new InputStreamReader(s.getInputStream(), StandardCharsets.UTF_8));
            for (String line; (line = in.readLine()) != null; ) {
                if (line.startsWith("data: ")) {
                    break;
                }
            }
        }
    }
}
