package org.attnskip.serve;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.attnskip.CliRun;
import org.attnskip.Fixtures;
import org.attnskip.StoriesExport;
import org.attnskip.runtime.DecoderSession;
import org.attnskip.runtime.Device;
import org.attnskip.runtime.Generator;
import org.attnskip.runtime.Tokenizer;
import org.attnskip.runtime.TokenizerFiles;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.InputStream;
import java.io.OutputStream;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The HTTP server on loopback over stories260K with attention dropped above 0.6 (layers 3 and 4). */
class CompletionServerTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final HttpClient HTTP = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();

    @TempDir
    static Path tmp;
    static Path drop;
    static ServedModel served;
    static CompletionServer server;
    static String base;

    @BeforeAll
    static void start() {
        Path dir = StoriesExport.export(tmp, "stories260K");
        drop = tmp.resolve("drop06");
        CliRun optimize = CliRun.of("optimize", dir.toString(), "-o", drop.toString(), "--drop-attn-above", "0.6");
        assertEquals(0, optimize.code(), optimize.err());
        served = ServedModel.open(drop, null, Device.CPU);
        server = new CompletionServer(served, new ServeLimits(4096, 64, 300, 4, 64, 4));
        base = "http://127.0.0.1:" + server.start("127.0.0.1", 0);
    }

    @AfterAll
    static void stop() {
        if (server != null) {
            server.close();
        }
        if (served != null) {
            served.close();
        }
    }

    /** What 'attnskip generate' prints after the prompt's own echo, computed with its own session. */
    private static List<String> greedyTexts(List<String> prompts, int maxTokens) {
        List<String> out = new ArrayList<>();
        try (DecoderSession session = DecoderSession.open(drop.resolve("model.onnx"), Device.CPU)) {
            Tokenizer tok = TokenizerFiles.open(drop.resolve("tok512.bin"), null, 512);
            Generator g = new Generator(session, tok);
            for (String prompt : prompts) {
                int promptLength = tok.encode(prompt).length;
                String echo = g.generate(prompt, Generator.Options.greedy(promptLength - 1), piece -> { }).text();
                String full = g.generate(prompt, Generator.Options.greedy(promptLength - 1 + maxTokens), piece -> { }).text();
                assertTrue(full.startsWith(echo));
                out.add(full.substring(echo.length()));
            }
        }
        return out;
    }

    private static HttpResponse<String> post(String path, String body) throws Exception {
        return HTTP.send(HttpRequest.newBuilder(URI.create(base + path)).POST(HttpRequest.BodyPublishers.ofString(body))
                .header("Content-Type", "application/json").build(), HttpResponse.BodyHandlers.ofString());
    }

    private static HttpResponse<String> get(String path) throws Exception {
        return HTTP.send(HttpRequest.newBuilder(URI.create(base + path)).GET().build(), HttpResponse.BodyHandlers.ofString());
    }

    private static String completionBody(String prompt, int maxTokens, boolean stream) {
        return JSON.createObjectNode().put("prompt", prompt).put("max_tokens", maxTokens).put("temperature", 0)
                .put("stream", stream).toString();
    }

    @Test
    void greedyCompletionEqualsGenerate() throws Exception {
        String expected = greedyTexts(List.of("Once upon a time"), 60).get(0);
        HttpResponse<String> r = post("/v1/completions", completionBody("Once upon a time", 60, false));
        assertEquals(200, r.statusCode(), r.body());
        JsonNode body = JSON.readTree(r.body());
        assertEquals(expected, body.at("/choices/0/text").asText());
        assertEquals("text_completion", body.get("object").asText());
        assertEquals(5, body.at("/usage/prompt_tokens").asInt()); // BOS + 4 tokens of "Once upon a time"
        assertEquals(body.at("/usage/prompt_tokens").asInt() + body.at("/usage/completion_tokens").asInt(),
                body.at("/usage/total_tokens").asInt());
        assertTrue(expected.length() > 20, expected);
    }

    /** 32 story openings of different lengths, for concurrency tests that must not cross their answers. */
    static List<String> thirtyTwoPrompts() {
        String[] starts = {"Once upon a time", "The cat", "Lily went", "Tom had a", "One day", "The sun", "A big dog", "Mom said"};
        String[] ends = {"", " and", " in the park", " with a toy"};
        List<String> prompts = new ArrayList<>();
        for (String s : starts) {
            for (String e : ends) {
                prompts.add(s + e);
            }
        }
        return prompts;
    }

    @Test
    void thirtyTwoConcurrentStreamsEachGetTheirOwnText() throws Exception {
        List<String> prompts = thirtyTwoPrompts();
        assertEquals(32, prompts.size());
        // Each request asks for a different length too, so that crossed streams could not go unnoticed.
        List<String> expected = new ArrayList<>();
        for (int i = 0; i < prompts.size(); i++) {
            expected.add(greedyTexts(List.of(prompts.get(i)), 24 + i).get(0));
        }
        assertEquals(32, expected.stream().distinct().count(), "the prompts should lead to distinct texts");

        List<CompletableFuture<HttpResponse<java.util.stream.Stream<String>>>> calls = new ArrayList<>();
        for (String prompt : prompts) {
            calls.add(HTTP.sendAsync(HttpRequest.newBuilder(URI.create(base + "/v1/completions"))
                    .POST(HttpRequest.BodyPublishers.ofString(completionBody(prompt, 24 + calls.size(), true))).build(),
                    HttpResponse.BodyHandlers.ofLines()));
        }
        for (int i = 0; i < prompts.size(); i++) {
            HttpResponse<java.util.stream.Stream<String>> r = calls.get(i).get(60, TimeUnit.SECONDS);
            assertEquals(200, r.statusCode());
            assertTrue(r.headers().firstValue("Content-Type").orElse("").startsWith("text/event-stream"));
            StringBuilder text = new StringBuilder();
            List<String> data = r.body().filter(l -> l.startsWith("data: ")).map(l -> l.substring(6)).toList();
            assertEquals("[DONE]", data.get(data.size() - 1));
            for (String d : data.subList(0, data.size() - 1)) {
                text.append(JSON.readTree(d).at("/choices/0/text").asText());
            }
            assertEquals(expected.get(i), text.toString(), "prompt " + prompts.get(i));
        }
        Histogram rows = server.metrics().decodeBatchSize;
        System.out.printf("32 streams: %d shared decode steps, %.2f requests per step on average%n",
                rows.count(), rows.sum() / rows.count());
        assertEquals(4, server.decodeBatchRows());
        assertTrue(rows.sum() > rows.count(), "4 workers on 32 long requests: some decode steps were shared");
    }

    @Test
    void aServerThatDecodesEachRequestAloneGivesTheSameText() throws Exception {
        String expected = greedyTexts(List.of("The cat"), 40).get(0);
        try (CompletionServer alone = new CompletionServer(served, new ServeLimits(4096, 64, 300, 2, 8, 1))) {
            assertEquals(1, alone.decodeBatchRows());
            int port = alone.start("127.0.0.1", 0);
            HttpResponse<String> r = HTTP.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port
                    + "/v1/completions")).POST(HttpRequest.BodyPublishers.ofString(completionBody("The cat", 40, false)))
                    .build(), HttpResponse.BodyHandlers.ofString());
            assertEquals(200, r.statusCode(), r.body());
            assertEquals(expected, JSON.readTree(r.body()).at("/choices/0/text").asText());
            assertEquals(0, alone.metrics().decodeBatchSize.count());
        }
    }

    @Test
    void badRequestsGetTheRight4xxAndTheServerAnswersTheNextOne() throws Exception {
        String longPrompt = "the cat and the dog ".repeat(30);
        Object[][] cases = {
                {"{\"prompt\": \"Once\", ", 400, null},
                {"{\"prompt\": \"" + "a".repeat(5000) + "\"}", 413, null},
                {"{\"prompt\": \"Once\", \"max_tokens\": -3}", 400, "max_tokens"},
                {"{\"prompt\": \"" + longPrompt + "\"}", 400, "prompt"},
                {"{\"prompt\": \"Once\", \"temperature\": \"hot\"}", 400, "temperature"},
                {"{\"prompt\": 7}", 400, "prompt"},
                {"{\"prompt\": \"Once\", \"stop\": [1]}", 400, "stop"},
                {"{\"prompt\": \"Once\", \"max_tokens\": 301}", 400, "max_tokens"},
                {"[1, 2]", 400, null},
        };
        for (Object[] c : cases) {
            HttpResponse<String> r = post("/v1/completions", (String) c[0]);
            assertEquals(c[1], r.statusCode(), r.body());
            JsonNode error = JSON.readTree(r.body()).get("error");
            assertFalse(error.get("message").asText().isEmpty());
            assertTrue(error.has("type") && error.has("code") && error.has("param"), r.body());
            assertEquals(c[2] == null ? "null" : c[2], error.get("param").isNull() ? "null" : error.get("param").asText());
            assertEquals(200, post("/v1/completions", completionBody("Once", 3, false)).statusCode());
        }
        HttpResponse<String> chat = post("/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}]}");
        assertEquals(400, chat.statusCode());
        assertEquals("chat_template_missing", JSON.readTree(chat.body()).at("/error/code").asText());
        assertTrue(chat.body().contains("no chat template"), chat.body());
    }

    @Test
    void stopSequenceCutsTheText() throws Exception {
        String full = greedyTexts(List.of("Once upon a time"), 30).get(0);
        String stop = full.substring(10, 14);
        HttpResponse<String> r = post("/v1/completions", "{\"prompt\": \"Once upon a time\", \"max_tokens\": 30, "
                + "\"temperature\": 0, \"stop\": " + JSON.writeValueAsString(stop) + "}");
        JsonNode choice = JSON.readTree(r.body()).at("/choices/0");
        assertEquals(full.substring(0, full.indexOf(stop)), choice.get("text").asText());
        assertEquals("stop", choice.get("finish_reason").asText());
    }

    @Test
    void modelsReportsTheRewrite() throws Exception {
        JsonNode m = JSON.readTree(get("/v1/models").body()).at("/data/0");
        assertEquals("drop06", m.get("id").asText());
        assertEquals("drop", m.at("/attnskip/rewrite/mode").asText());
        assertEquals("0.6", m.at("/attnskip/rewrite/threshold").asText());
        assertEquals("3,4", m.at("/attnskip/rewrite/layers").asText());
        assertEquals("[0,1,2]", m.at("/attnskip/cached_layers").toString());
        // 3 layers x (K + V) x 4 kv heads x 8 dims x 4 bytes
        assertEquals(3 * 2 * 4 * 8 * 4, m.at("/attnskip/kv_bytes_per_token").asInt());
        assertEquals(200, get("/health").statusCode());
    }

    @Test
    void metricsParseAsPrometheusText() throws Exception {
        assertEquals(200, post("/v1/completions", completionBody("The dog", 7, false)).statusCode());
        HttpResponse<String> r = get("/metrics");
        assertTrue(r.headers().firstValue("Content-Type").orElse("").startsWith("text/plain"));
        Pattern sample = Pattern.compile("[a-zA-Z_:][a-zA-Z0-9_:]*(\\{[a-zA-Z_]+=\"[^\"]*\"(,[a-zA-Z_]+=\"[^\"]*\")*})? "
                + "(-?[0-9]+(\\.[0-9]+)?|\\+Inf)");
        java.util.Map<String, Double> values = new java.util.HashMap<>();
        for (String line : r.body().split("\n")) {
            if (line.startsWith("# HELP ") || line.startsWith("# TYPE ")) {
                continue;
            }
            assertTrue(sample.matcher(line).matches(), "not a Prometheus sample: " + line);
            int space = line.lastIndexOf(' ');
            values.put(line.substring(0, space), Double.parseDouble(line.substring(space + 1)));
        }
        assertTrue(values.get("attnskip_completion_tokens_total") >= 7);
        assertTrue(values.get("attnskip_requests_total{status=\"200\"}") >= 1);
        assertTrue(values.get("attnskip_time_per_output_token_seconds_count") >= 6);
        assertEquals(values.get("attnskip_time_to_first_token_seconds_count"),
                values.get("attnskip_time_to_first_token_seconds_bucket{le=\"+Inf\"}"));
        assertTrue(values.containsKey("attnskip_queue_depth"));
        assertTrue(values.containsKey("attnskip_kv_cache_bytes"));
    }

    @Test
    void aFullQueueGets429AndDisconnectedStreamsFreeTheirCache() throws Exception {
        // Two workers whose two streams share decode steps, and no queue.
        try (CompletionServer small = new CompletionServer(served, new ServeLimits(4096, 64, 500, 2, 0, 2))) {
            assertEquals(null, small.batchingNote());
            int port = small.start("127.0.0.1", 0);
            List<Socket> streams = new ArrayList<>();
            try {
                for (String prompt : List.of("Once", "The dog")) {
                    Socket socket = new Socket("127.0.0.1", port);
                    streams.add(socket);
                    String body = "{\"prompt\": \"" + prompt + "\", \"max_tokens\": 500, \"stream\": true}";
                    OutputStream out = socket.getOutputStream();
                    out.write(("POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                            + "Content-Length: " + body.length() + "\r\n\r\n" + body).getBytes(StandardCharsets.UTF_8));
                    out.flush();
                    InputStream in = socket.getInputStream();
                    String seen = "";
                    while (!seen.contains("data: ")) { // this stream's worker is now generating
                        seen += (char) in.read();
                    }
                }
                HttpResponse<String> busy = HTTP.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port
                        + "/v1/completions")).POST(HttpRequest.BodyPublishers.ofString(completionBody("Hi", 3, false)))
                        .build(), HttpResponse.BodyHandlers.ofString());
                assertEquals(429, busy.statusCode(), busy.body());
                assertEquals("queue_full", JSON.readTree(busy.body()).at("/error/code").asText());
            } finally {
                for (Socket socket : streams) {
                    socket.close();
                }
            }
            // The sockets are closed: each stream's next write fails, its completion leaves the shared
            // decode step and its cache is freed.
            for (int i = 0; i < 500 && (small.metrics().cancelledCount() < 2 || small.metrics().kvBytesInUse() != 0); i++) {
                Thread.sleep(10);
            }
            assertEquals(2, small.metrics().cancelledCount());
            assertEquals(0, small.metrics().kvBytesInUse());
            assertTrue(small.metrics().decodeBatchSize.sum() > small.metrics().decodeBatchSize.count(),
                    "the two streams shared decode steps");
        }
    }
}
