package org.attnskip.serve;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.attnskip.Fixtures;
import org.attnskip.cli.Main;
import org.attnskip.runtime.DecoderSession;
import org.attnskip.runtime.Device;
import org.attnskip.runtime.Generator;
import org.attnskip.runtime.Tokenizer;
import org.attnskip.runtime.TokenizerFiles;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * serve on the opset-24 static-cache graph, with attention dropped above 0.6: concurrent greedy
 * requests and a request for two choices (each decoding from a copy of the prompt's fixed buffers)
 * get the text the unfused graph with the same drop generates.
 */
class StaticCacheServeTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final HttpClient HTTP = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();

    @TempDir
    Path tmp;

    @Test
    void staticCacheGraphServesTheUnfusedGraphsTexts() throws Exception {
        Path folder = Fixtures.model("stories260K");
        Path unfused = dropped(folder, "unfused");
        Path staticGraph = dropped(folder, "static");
        String[] prompts = {"Once upon a time", "The cat", "Lily went to the park", "One day"};
        List<String> expected = new ArrayList<>();
        try (DecoderSession session = DecoderSession.open(unfused.resolve("model.onnx"), Device.CPU)) {
            assertTrue(!session.updatesCacheInPlace());
            Tokenizer tok = TokenizerFiles.open(unfused.resolve("tok512.bin"), null, 512);
            Generator g = new Generator(session, tok);
            for (int i = 0; i < prompts.length; i++) {
                int promptLength = tok.encode(prompts[i]).length;
                String echo = g.generate(prompts[i], Generator.Options.greedy(promptLength - 1), piece -> { }).text();
                String full = g.generate(prompts[i], Generator.Options.greedy(promptLength - 1 + 30 + i), piece -> { }).text();
                expected.add(full.substring(echo.length()));
            }
        }
        try (ServedModel served = ServedModel.open(staticGraph, null, Device.CPU);
             CompletionServer server = new CompletionServer(served, new ServeLimits(4096, 64, 300, 4, 64, 4))) {
            String base = "http://127.0.0.1:" + server.start("127.0.0.1", 0) + "/v1/completions";
            List<CompletableFuture<HttpResponse<String>>> calls = new ArrayList<>();
            for (int i = 0; i < prompts.length; i++) {
                calls.add(HTTP.sendAsync(request(base, prompts[i], 30 + i, 1), HttpResponse.BodyHandlers.ofString()));
            }
            for (int i = 0; i < prompts.length; i++) {
                HttpResponse<String> r = calls.get(i).get();
                assertEquals(200, r.statusCode(), r.body());
                assertEquals(expected.get(i), JSON.readTree(r.body()).at("/choices/0/text").asText(), prompts[i]);
            }
            HttpResponse<String> two = HTTP.send(request(base, prompts[0], 30, 2), HttpResponse.BodyHandlers.ofString());
            assertEquals(200, two.statusCode(), two.body());
            JsonNode choices = JSON.readTree(two.body()).get("choices");
            assertEquals(2, choices.size());
            for (JsonNode c : choices) {
                assertEquals(expected.get(0), c.get("text").asText());
            }
        }
    }

    private Path dropped(Path folder, String graph) {
        Path dir = tmp.resolve(graph);
        Path drop = tmp.resolve(graph + "-drop06");
        assertEquals(0, Main.run("export", "--llama2c", folder.resolve("stories260K.bin").toString(),
                "--tokenizer", folder.resolve("tok512.bin").toString(), "--graph", graph, "-o", dir.toString()));
        assertEquals(0, Main.run("optimize", dir.toString(), "-o", drop.toString(), "--drop-attn-above", "0.6"));
        return drop;
    }

    private static HttpRequest request(String url, String prompt, int maxTokens, int n) {
        String body = JSON.createObjectNode().put("prompt", prompt).put("max_tokens", maxTokens).put("temperature", 0)
                .put("n", n).toString();
        return HttpRequest.newBuilder(URI.create(url)).POST(HttpRequest.BodyPublishers.ofString(body))
                .header("Content-Type", "application/json").build();
    }
}
