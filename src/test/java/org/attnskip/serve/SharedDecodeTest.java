package org.attnskip.serve;

import com.fasterxml.jackson.databind.ObjectMapper;
import org.attnskip.Fixtures;
import org.attnskip.StoriesExport;
import org.attnskip.runtime.DecoderSession;
import org.attnskip.runtime.Device;
import org.attnskip.runtime.Generator;
import org.attnskip.runtime.KvBatch;
import org.attnskip.runtime.Tokenizer;
import org.attnskip.runtime.TokenizerFiles;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.io.TempDir;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Graphs whose attention takes every row's past from position 0, served with shared decode steps:
 * rows padded on the right, each row's length reaching the attention as seqlens_k (a
 * GroupQueryAttention graph, 'export --graph fused') or as write_indices and nonpad_kv_seqlen (the
 * opset-24 static cache, 'export --graph static'). 32 concurrent greedy requests of different
 * prompt and completion lengths, at most 8 per step, each get exactly the text the model generates
 * for that request alone.
 */
class SharedDecodeTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final HttpClient HTTP = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();

    @TempDir
    Path tmp;

    @ParameterizedTest(name = "--graph {0}")
    @ValueSource(strings = {"fused", "static"})
    void thirtyTwoConcurrentRequestsEachGetTheirOwnText(String graph) throws Exception {
        Path dir = StoriesExport.export(tmp, graph, "--graph", graph);
        List<String> prompts = CompletionServerTest.thirtyTwoPrompts();
        List<String> expected = aloneTexts(dir, prompts);
        assertEquals(32, expected.stream().distinct().count(), "the prompts should lead to distinct texts");

        try (ServedModel served = ServedModel.open(dir, null, Device.CPU);
             CompletionServer server = new CompletionServer(served, new ServeLimits(4096, 64, 300, 8, 64, 8))) {
            assertEquals(KvBatch.Padding.RIGHT, served.session().batchPadding());
            assertNull(server.batchingNote(), "the start-up check found shared steps equal to decoding alone");
            assertEquals(8, server.decodeBatchRows());
            String base = "http://127.0.0.1:" + server.start("127.0.0.1", 0);
            List<CompletableFuture<HttpResponse<String>>> calls = new ArrayList<>();
            for (int i = 0; i < prompts.size(); i++) {
                String body = JSON.createObjectNode().put("prompt", prompts.get(i)).put("max_tokens", maxTokens(i))
                        .put("temperature", 0).toString();
                calls.add(HTTP.sendAsync(HttpRequest.newBuilder(URI.create(base + "/v1/completions"))
                        .POST(HttpRequest.BodyPublishers.ofString(body)).build(), HttpResponse.BodyHandlers.ofString()));
            }
            for (int i = 0; i < prompts.size(); i++) {
                HttpResponse<String> r = calls.get(i).get(120, TimeUnit.SECONDS);
                assertEquals(200, r.statusCode(), r.body());
                assertEquals(expected.get(i), JSON.readTree(r.body()).at("/choices/0/text").asText(),
                        "prompt " + prompts.get(i));
            }
            Histogram rows = server.metrics().decodeBatchSize;
            System.out.printf("--graph " + graph + ", 32 requests: %d shared decode steps, %.2f requests per step on average%n",
                    rows.count(), rows.sum() / rows.count());
            assertTrue(rows.sum() > 2 * rows.count(), "8 workers on 32 requests: most decode steps were shared");
        }
    }

    /** Each request asks for a different length, so that crossed rows could not go unnoticed. */
    private static int maxTokens(int i) {
        return 24 + i;
    }

    /** What 'attnskip generate' gives for each request on its own, after the prompt's echo. */
    private static List<String> aloneTexts(Path dir, List<String> prompts) {
        List<String> out = new ArrayList<>();
        try (DecoderSession session = DecoderSession.open(dir.resolve("model.onnx"), Device.CPU)) {
            Tokenizer tok = TokenizerFiles.open(dir.resolve("tok512.bin"), null, 512);
            Generator g = new Generator(session, tok);
            for (int i = 0; i < prompts.size(); i++) {
                int promptLength = tok.encode(prompts.get(i)).length;
                String echo = g.generate(prompts.get(i), Generator.Options.greedy(promptLength - 1), piece -> { }).text();
                String full = g.generate(prompts.get(i), Generator.Options.greedy(promptLength - 1 + maxTokens(i)),
                        piece -> { }).text();
                assertTrue(full.startsWith(echo));
                out.add(full.substring(echo.length()));
            }
        }
        return out;
    }
}
