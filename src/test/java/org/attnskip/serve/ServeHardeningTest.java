package org.attnskip.serve;

import com.fasterxml.jackson.databind.ObjectMapper;
import org.attnskip.CliRun;
import org.attnskip.StoriesExport;
import org.attnskip.runtime.Device;
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
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The server under abuse, on stories260K: API key, no CORS unless asked, JSON bombs, and slow
 * clients (a body a few bytes per second, a stream never read) that must not hold a worker.
 * Timeouts are set short here (1 s idle, 100 B/s) so that the test is quick; no time is asserted.
 */
class ServeHardeningTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final HttpClient HTTP = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
    private static final String KEY = "s3cret-key";

    @TempDir
    static Path tmp;
    static Path dir;
    static ServedModel served;
    static CompletionServer server;
    static int port;

    @BeforeAll
    static void start() {
        dir = StoriesExport.export(tmp, "stories260K");
        served = ServedModel.open(dir, null, Device.CPU);
        // two workers, so a held worker would show at once
        server = new CompletionServer(served, new ServeLimits(1 << 20, 64, 400, 2, 8, 1));
        port = server.start("127.0.0.1", 0, new HttpPolicy(KEY, List.of(), 1000, 100));
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

    private static HttpResponse<String> send(String method, String path, String body, String... headers) throws Exception {
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + path))
                .method(method, body == null ? HttpRequest.BodyPublishers.noBody() : HttpRequest.BodyPublishers.ofString(body));
        for (int i = 0; i < headers.length; i += 2) {
            b.header(headers[i], headers[i + 1]);
        }
        return HTTP.send(b.build(), HttpResponse.BodyHandlers.ofString());
    }

    private static HttpResponse<String> complete(String body) throws Exception {
        return send("POST", "/v1/completions", body, "Authorization", "Bearer " + KEY);
    }

    @Test
    void everyRouteButHealthNeedsTheKey() throws Exception {
        String body = "{\"prompt\":\"Once\",\"max_tokens\":2,\"temperature\":0}";
        assertEquals(401, send("POST", "/v1/completions", body).statusCode());
        assertEquals(401, send("POST", "/v1/completions", body, "Authorization", "Bearer wrong").statusCode());
        assertEquals(401, send("POST", "/v1/completions", body, "Authorization", KEY).statusCode(), "Bearer is required");
        assertEquals(401, send("GET", "/metrics", null).statusCode());
        assertEquals(401, send("GET", "/v1/models", null).statusCode());
        HttpResponse<String> denied = send("POST", "/v1/completions", body);
        assertEquals("invalid_api_key", JSON.readTree(denied.body()).at("/error/code").asText());
        assertEquals(200, send("GET", "/health", null).statusCode());
        assertEquals(200, complete(body).statusCode());
    }

    @Test
    void noCorsHeadersUnlessAsked() throws Exception {
        HttpResponse<String> r = send("POST", "/v1/completions", "{\"prompt\":\"a\",\"max_tokens\":1}",
                "Authorization", "Bearer " + KEY, "Origin", "https://evil.example");
        assertEquals(200, r.statusCode());
        assertTrue(r.headers().firstValue("Access-Control-Allow-Origin").isEmpty());
        HttpResponse<String> preflight = send("OPTIONS", "/v1/completions", null, "Origin", "https://evil.example",
                "Access-Control-Request-Method", "POST");
        assertTrue(preflight.headers().firstValue("Access-Control-Allow-Origin").isEmpty());
    }

    @Test
    void corsForTheOriginNamed() throws Exception {
        try (CompletionServer cors = new CompletionServer(served, new ServeLimits(4096, 64, 16, 1, 1, 1))) {
            int p = cors.start("127.0.0.1", 0, new HttpPolicy(null, List.of("https://app.example"), 1000, 100));
            HttpResponse<String> r = HTTP.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + p + "/health"))
                    .header("Origin", "https://app.example").build(), HttpResponse.BodyHandlers.ofString());
            assertEquals("https://app.example", r.headers().firstValue("Access-Control-Allow-Origin").orElse(""));
            HttpResponse<String> other = HTTP.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + p + "/health"))
                    .header("Origin", "https://evil.example").build(), HttpResponse.BodyHandlers.ofString());
            assertTrue(other.headers().firstValue("Access-Control-Allow-Origin").isEmpty());
        }
    }

    @Test
    void jsonNested100000DeepIsA400() throws Exception {
        for (String bomb : List.of("[".repeat(100_000), "{\"prompt\":" + "[".repeat(100_000),
                "{\"a\":".repeat(50_000) + "1" + "}".repeat(50_000))) {
            HttpResponse<String> r = complete(bomb);
            assertEquals(400, r.statusCode(), r.body());
            assertTrue(r.body().contains("nesting depth"), r.body());
        }
        assertEquals(200, complete("{\"prompt\":\"a\",\"max_tokens\":1}").statusCode(), "still serving");
    }

    /** Sends the headers of a POST of {@code length} body bytes, and returns the open socket. */
    private static Socket startPost(String path, int length) throws Exception {
        Socket s = new Socket("127.0.0.1", port);
        String head = "POST " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + KEY
                + "\r\nContent-Type: application/json\r\nContent-Length: " + length + "\r\n\r\n";
        s.getOutputStream().write(head.getBytes(StandardCharsets.US_ASCII));
        s.getOutputStream().flush();
        return s;
    }

    private static String readAll(InputStream in) throws Exception {
        return new String(in.readAllBytes(), StandardCharsets.UTF_8);
    }

    @Test
    void aBodyTricklingInIsCutOffAndHoldsNoWorker() throws Exception {
        String body = "{\"prompt\":\"Once upon a time\",\"max_tokens\":4,\"temperature\":0}";
        try (Socket slow1 = startPost("/v1/completions", body.length());
             Socket slow2 = startPost("/v1/completions", body.length())) {
            OutputStream o1 = slow1.getOutputStream();
            OutputStream o2 = slow2.getOutputStream();
            String answer = null;
            // a byte every 200 ms: 5 B/s against a floor of 100 B/s
            for (int i = 0; i < body.length(); i++) {
                try {
                    o1.write(body.charAt(i));
                    o1.flush();
                    o2.write(body.charAt(i));
                    o2.flush();
                } catch (java.io.IOException closed) {
                    break;
                }
                if (i == 3) {
                    // both workers would be busy if slow bodies held them; this must still be answered
                    HttpResponse<String> normal = complete(body);
                    assertEquals(200, normal.statusCode(), normal.body());
                }
                Thread.sleep(200);
            }
            slow1.setSoTimeout(20_000);
            answer = readAll(slow1.getInputStream());
            assertTrue(answer.isEmpty() || answer.startsWith("HTTP/1.1 408"), "cut off, got: " + answer);
            assertFalse(answer.contains("\"choices\""), "a trickled body must not be served");
        }
        assertEquals(200, complete(body).statusCode());
    }

    @Test
    void aStreamNeverReadFreesItsWorkerAndCache() throws Exception {
        String body = "{\"prompt\":\"Once upon a time\",\"max_tokens\":300,\"temperature\":0,\"stream\":true}";
        try (Socket unread = startPost("/v1/completions", body.length())) {
            unread.getOutputStream().write(body.getBytes(StandardCharsets.UTF_8));
            unread.getOutputStream().flush();
            for (int i = 0; i < 3000 && runningRequests() == 0 && server.metrics().kvBytesInUse() == 0; i++) {
                Thread.sleep(5); // until the request has started
            }
            // never read: wait until the server has let the request go (generation ended or the write timed out)
            for (int i = 0; i < 3000 && (server.metrics().kvBytesInUse() != 0 || runningRequests() != 0); i++) {
                Thread.sleep(10);
            }
            assertEquals(0, server.metrics().kvBytesInUse(), "KV cache released while the client still holds the socket");
            assertEquals(0, runningRequests());
            assertEquals(200, complete("{\"prompt\":\"a\",\"max_tokens\":2}").statusCode());
        }
    }

    private static long runningRequests() {
        for (String line : server.metrics().render().split("\n")) {
            if (line.startsWith("attnskip_requests_running ")) {
                return (long) Double.parseDouble(line.substring(line.indexOf(' ') + 1));
            }
        }
        throw new AssertionError("no attnskip_requests_running in /metrics");
    }

    @Test
    void bindingBeyondLoopbackNeedsAKey() {
        CliRun r = CliRun.of("serve", dir.toString(), "--host", "0.0.0.0", "--port", "0", "--device", "cpu");
        assertEquals(2, r.code(), r.err());
        assertEquals(1, r.err().strip().lines().count(), r.err());
        assertTrue(r.err().contains("listening on 0.0.0.0 (not loopback) needs an API key"), r.err());
    }
}
