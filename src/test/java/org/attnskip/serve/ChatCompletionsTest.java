package org.attnskip.serve;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.attnskip.runtime.DecoderSession;
import org.attnskip.runtime.Device;
import org.attnskip.runtime.Generator;
import org.attnskip.runtime.TextPieces;
import org.attnskip.runtime.Tokenizer;
import org.attnskip.runtime.TokenizerFiles;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * /v1/chat/completions over a model exported from a test-written Hugging Face checkpoint whose
 * tokenizer_config.json holds Llama 3 Instruct's chat template: the prompt is the template rendered
 * by hand, the reply is greedy 'generate' on it; and 32 concurrent requests mixing chat, n: 2 and
 * lists of prompts each get their own answers.
 */
class ChatCompletionsTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final HttpClient HTTP = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
    private static final ServeLimits LIMITS = new ServeLimits(65536, 128, 100, 4, 64, 4);

    @TempDir
    static Path tmp;
    static Path dir;
    static ServedModel served;
    static CompletionServer server;
    static String base;
    static DecoderSession session;
    static Tokenizer tokenizer;

    @BeforeAll
    static void start() throws Exception {
        dir = ChatModelFixture.export(tmp);
        served = ServedModel.open(dir, null, Device.CPU);
        server = new CompletionServer(served, LIMITS);
        base = "http://127.0.0.1:" + server.start("127.0.0.1", 0);
        session = DecoderSession.open(dir.resolve("model.onnx"), Device.CPU);
        tokenizer = TokenizerFiles.open(dir.resolve("tokenizer.json"), null, ChatModelFixture.VOCAB.size());
    }

    @AfterAll
    static void stop() throws Exception {
        if (server != null) {
            server.close();
        }
        if (served != null) {
            served.close();
        }
        if (session != null) {
            session.close();
        }
        if (tokenizer instanceof AutoCloseable c) {
            c.close();
        }
    }

    private static HttpRequest request(String path, String body) {
        return HttpRequest.newBuilder(URI.create(base + path)).POST(HttpRequest.BodyPublishers.ofString(body)).build();
    }

    private static JsonNode post(String path, ObjectNode body) throws Exception {
        HttpResponse<String> r = HTTP.send(request(path, body.toString()), HttpResponse.BodyHandlers.ofString());
        assertEquals(200, r.statusCode(), r.body());
        return JSON.readTree(r.body());
    }

    /** Greedy 'generate' after the prompt, as text: what a reply of maxTokens tokens must say. */
    private static String greedy(int[] prompt, int maxTokens) {
        int[] gen = new Generator(session, tokenizer).generate(prompt, Generator.Options.greedy(prompt.length - 1 + maxTokens),
                p -> { }).generatedIds();
        assertEquals(maxTokens, gen.length, "the fixture's replies run to max_tokens");
        TextPieces pieces = new TextPieces(tokenizer);
        StringBuilder b = new StringBuilder();
        int prev = prompt[prompt.length - 1];
        for (int id : gen) {
            b.append(pieces.piece(prev, id));
            prev = id;
        }
        return b.toString();
    }

    private static ArrayNode messages(String system, String user) {
        ArrayNode m = JSON.createArrayNode();
        m.addObject().put("role", "system").put("content", system);
        m.addObject().put("role", "user").put("content", user);
        return m;
    }

    /** Llama 3's format written out by hand, tokenized by hand with the fixture's word-level vocabulary. */
    private static int[] handRendered(String system, String user) {
        List<Integer> ids = new ArrayList<>(List.of(ChatModelFixture.id("<|begin_of_text|>")));
        for (String[] turn : new String[][] {{"system", system}, {"user", user}}) {
            ids.add(ChatModelFixture.id("<|start_header_id|>"));
            ids.add(ChatModelFixture.id(turn[0]));
            ids.add(ChatModelFixture.id("<|end_header_id|>"));
            for (String word : turn[1].trim().split(" ")) {
                ids.add(ChatModelFixture.id(word));
            }
            ids.add(ChatModelFixture.id("<|eot_id|>"));
        }
        ids.add(ChatModelFixture.id("<|start_header_id|>"));
        ids.add(ChatModelFixture.id("assistant"));
        ids.add(ChatModelFixture.id("<|end_header_id|>"));
        return ids.stream().mapToInt(Integer::intValue).toArray();
    }

    @Test
    void exportCarriesTheChatTemplate() throws Exception {
        assertTrue(Files.isRegularFile(dir.resolve("tokenizer_config.json")));
        HttpResponse<String> models = HTTP.send(HttpRequest.newBuilder(URI.create(base + "/v1/models")).GET().build(),
                HttpResponse.BodyHandlers.ofString());
        assertTrue(JSON.readTree(models.body()).at("/data/0/attnskip/chat_template").asBoolean());
    }

    @Test
    void chatPromptIsTheTemplateRenderedByHandAndTheReplyIsGreedyGenerate() throws Exception {
        ObjectNode body = JSON.createObjectNode().put("max_tokens", 24).put("temperature", 0);
        body.set("messages", messages("the sun", "  Hello world the cat "));
        int[] hand = handRendered("the sun", "Hello world the cat");
        assertArrayEquals(hand, new RequestPlanner(served, LIMITS).chat(body).choices().get(0).promptIds());

        JsonNode r = post("/v1/chat/completions", body);
        assertEquals("chat.completion", r.get("object").asText());
        JsonNode choice = r.at("/choices/0");
        assertEquals("assistant", choice.at("/message/role").asText());
        assertEquals(greedy(hand, 24), choice.at("/message/content").asText());
        assertEquals("length", choice.get("finish_reason").asText());
        assertEquals(hand.length, r.at("/usage/prompt_tokens").asInt());
        assertEquals(24, r.at("/usage/completion_tokens").asInt());
    }

    @Test
    void streamedChatSendsTheRoleThenTheSameReply() throws Exception {
        ObjectNode body = JSON.createObjectNode().put("max_tokens", 12).put("temperature", 0).put("stream", true);
        body.set("messages", messages("the moon", "big red dog"));
        HttpResponse<String> r = HTTP.send(request("/v1/chat/completions", body.toString()), HttpResponse.BodyHandlers.ofString());
        assertEquals(200, r.statusCode(), r.body());
        List<JsonNode> chunks = new ArrayList<>();
        for (String line : r.body().split("\n")) {
            if (line.startsWith("data: {")) {
                chunks.add(JSON.readTree(line.substring(6)));
            }
        }
        assertTrue(r.body().trim().endsWith("data: [DONE]"));
        assertEquals("assistant", chunks.get(0).at("/choices/0/delta/role").asText());
        StringBuilder content = new StringBuilder();
        chunks.forEach(c -> content.append(c.at("/choices/0/delta/content").asText("")));
        assertEquals(greedy(handRendered("the moon", "big red dog"), 12), content.toString());
        JsonNode last = chunks.get(chunks.size() - 1);
        assertEquals("chat.completion.chunk", last.get("object").asText());
        assertEquals("length", last.at("/choices/0/finish_reason").asText());
    }

    @Test
    void chatLogprobsListTheTopAlternatives() throws Exception {
        ObjectNode body = JSON.createObjectNode().put("max_tokens", 6).put("temperature", 0).put("logprobs", true)
                .put("top_logprobs", 2).put("n", 2);
        body.set("messages", messages("the sun", "Hello"));
        JsonNode r = post("/v1/chat/completions", body);
        assertEquals(2, r.get("choices").size());
        for (int i = 0; i < 2; i++) {
            JsonNode choice = r.at("/choices/" + i);
            assertEquals(i, choice.get("index").asInt());
            JsonNode content = choice.at("/logprobs/content");
            assertEquals(6, content.size());
            StringBuilder text = new StringBuilder();
            for (JsonNode token : content) {
                text.append(token.get("token").asText());
                assertEquals(2, token.get("top_logprobs").size());
                // greedy: the chosen token is the likeliest alternative
                assertEquals(token.get("logprob").asDouble(), token.at("/top_logprobs/0/logprob").asDouble(), 0.0);
                assertTrue(token.get("logprob").asDouble() <= 0);
            }
            assertEquals(choice.at("/message/content").asText(), text.toString());
        }
        assertEquals(r.at("/choices/0/message/content"), r.at("/choices/1/message/content"), "temperature 0: n identical");
    }

    @Test
    void thirtyTwoConcurrentRequestsMixingChatNAndPromptListsEachGetTheirOwnAnswers() throws Exception {
        String[] words = {"cat", "dog", "sun", "moon", "tree", "bird", "fish", "book", "ball", "car", "boat", "star"};
        List<HttpRequest> requests = new ArrayList<>();
        List<List<String>> expected = new ArrayList<>(); // per request, its choices in index order
        for (int i = 0; i < 32; i++) {
            int maxTokens = 8 + i;
            String a = words[i % words.length];
            String b = words[(i * 5 + 3) % words.length];
            ObjectNode body = JSON.createObjectNode().put("max_tokens", maxTokens).put("temperature", 0);
            List<String> answers = new ArrayList<>();
            String path;
            switch (i % 3) {
                case 0 -> { // chat
                    path = "/v1/chat/completions";
                    body.set("messages", messages("the " + a, "Hello " + b));
                    answers.add(greedy(handRendered("the " + a, "Hello " + b), maxTokens));
                }
                case 1 -> { // n: 2 on one prompt
                    path = "/v1/completions";
                    body.put("prompt", "the " + a + " and " + b).put("n", 2);
                    String one = greedy(tokenizer.encode("the " + a + " and " + b), maxTokens);
                    answers.add(one);
                    answers.add(one);
                }
                default -> { // a list of three prompts
                    path = "/v1/completions";
                    List<String> prompts = List.of("big " + a, "small " + b, "happy " + a + " " + b);
                    body.set("prompt", JSON.valueToTree(prompts));
                    for (String p : prompts) {
                        answers.add(greedy(tokenizer.encode(p), maxTokens));
                    }
                }
            }
            requests.add(request(path, body.toString()));
            expected.add(answers);
        }
        int answers = expected.stream().mapToInt(List::size).sum();
        int twins = (int) expected.stream().filter(e -> e.size() == 2).count(); // n: 2 answers its prompt twice
        assertEquals(answers - twins, new HashSet<>(expected.stream().flatMap(List::stream).toList()).size(),
                "the answers of different prompts differ, so crossed answers would show");

        List<CompletableFuture<HttpResponse<String>>> calls = new ArrayList<>();
        requests.forEach(q -> calls.add(HTTP.sendAsync(q, HttpResponse.BodyHandlers.ofString())));
        for (int i = 0; i < 32; i++) {
            HttpResponse<String> r = calls.get(i).get(120, TimeUnit.SECONDS);
            assertEquals(200, r.statusCode(), r.body());
            JsonNode choices = JSON.readTree(r.body()).get("choices");
            List<String> got = new ArrayList<>();
            for (JsonNode c : choices) {
                assertEquals(got.size(), c.get("index").asInt());
                got.add(c.has("message") ? c.at("/message/content").asText() : c.get("text").asText());
            }
            assertEquals(expected.get(i), got, "request " + i);
        }
        Histogram rows = server.metrics().decodeBatchSize;
        System.out.printf("32 mixed requests (%d choices): %.2f choices per shared decode step on average%n",
                answers, rows.sum() / rows.count());
        assertTrue(rows.sum() > rows.count(), "decode steps were shared");
    }
}
