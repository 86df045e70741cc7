package org.attnskip.serve;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.attnskip.StoriesExport;
import org.attnskip.eval.ScoringModel;
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

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The completions fields OpenAI clients and lm-evaluation-harness send, against stories260K:
 * logprobs and echo checked against the log-softmax that 'eval' scores with, n choices and lists of
 * prompts against greedy and seeded 'generate'.
 */
class OpenAiCompletionsTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final HttpClient HTTP = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();

    @TempDir
    static Path tmp;
    static Path dir;
    static ServedModel served;
    static CompletionServer server;
    static String base;
    static DecoderSession session;
    static Tokenizer tokenizer;

    @BeforeAll
    static void start() {
        dir = StoriesExport.export(tmp, "stories260K");
        served = ServedModel.open(dir, null, Device.CPU);
        server = new CompletionServer(served, new ServeLimits(65536, 64, 300, 4, 64, 4));
        base = "http://127.0.0.1:" + server.start("127.0.0.1", 0);
        session = DecoderSession.open(dir.resolve("model.onnx"), Device.CPU);
        tokenizer = TokenizerFiles.open(dir.resolve("tok512.bin"), null, 512);
    }

    @AfterAll
    static void stop() {
        if (server != null) {
            server.close();
        }
        if (served != null) {
            served.close();
        }
        if (session != null) {
            session.close();
        }
    }

    private static JsonNode post(ObjectNode body) throws Exception {
        HttpResponse<String> r = send(body);
        assertEquals(200, r.statusCode(), r.body());
        return JSON.readTree(r.body());
    }

    private static HttpResponse<String> send(ObjectNode body) throws Exception {
        return HTTP.send(HttpRequest.newBuilder(URI.create(base + "/v1/completions"))
                .POST(HttpRequest.BodyPublishers.ofString(body.toString())).build(), HttpResponse.BodyHandlers.ofString());
    }

    /** The ids 'generate' produces after the prompt (its own session), greedy or sampled with a seed. */
    private static int[] generate(int[] prompt, int maxTokens, float temperature, long seed) {
        return new Generator(session, tokenizer).generate(prompt,
                new Generator.Options(prompt.length - 1 + maxTokens, temperature, 1f, seed), p -> { }).generatedIds();
    }

    private static String text(int[] prompt, int[] generated) {
        TextPieces pieces = new TextPieces(tokenizer);
        StringBuilder b = new StringBuilder();
        int prev = prompt[prompt.length - 1];
        for (int id : generated) {
            b.append(pieces.piece(prev, id));
            prev = id;
        }
        return b.toString();
    }

    @Test
    void lmEvalHarnessLoglikelihoodRequestMatchesEvalLogSoftmax() throws Exception {
        String prompt = "Once upon a time, there was a little girl named Lily.";
        ObjectNode body = JSON.createObjectNode().put("prompt", prompt).put("echo", true).put("logprobs", 1)
                .put("max_tokens", 0).put("temperature", 0);
        JsonNode choice = post(body).at("/choices/0");
        int[] ids = tokenizer.encode(prompt);
        double[][] eval = new ScoringModel(session).logProbs(ids, 0);

        JsonNode lp = choice.get("logprobs");
        assertEquals(ids.length, lp.get("tokens").size());
        assertTrue(lp.get("token_logprobs").get(0).isNull(), "nothing predicts the first prompt token");
        assertTrue(lp.get("top_logprobs").get(0).isNull());
        double sum = 0;
        double worst = 0;
        for (int p = 1; p < ids.length; p++) {
            double served = lp.get("token_logprobs").get(p).asDouble();
            worst = Math.max(worst, Math.abs(served - eval[p - 1][ids[p]]));
            sum += served;
            // logprobs 1: the most likely token at that position, and the prompt token when it is another
            double best = Arrays.stream(eval[p - 1]).max().orElseThrow();
            JsonNode top = lp.get("top_logprobs").get(p);
            assertTrue(top.size() == 1 || top.size() == 2, top.toString());
            double topMax = -Double.MAX_VALUE;
            for (JsonNode v : top) {
                topMax = Math.max(topMax, v.asDouble());
            }
            assertEquals(best, topMax, 1e-5);
        }
        assertTrue(worst <= 1e-5, "max |served - eval| = " + worst);
        System.out.printf("echo logprobs of %d prompt tokens: sum %.5f, max |served - eval log-softmax| %.2e%n",
                ids.length - 1, sum, worst);
        // the text is the prompt, and each token's text sits at its offset in it
        String text = choice.get("text").asText();
        assertEquals(prompt, text);
        for (int p = 0; p < ids.length; p++) {
            String token = lp.get("tokens").get(p).asText();
            int at = text.offsetByCodePoints(0, lp.get("text_offset").get(p).asInt());
            assertTrue(text.startsWith(token, at), "token " + p + " '" + token + "' at " + at);
        }
        assertEquals("length", choice.get("finish_reason").asText());
    }

    @Test
    void tokenIdPromptsEchoWithOneGeneratedToken() throws Exception {
        // lm-evaluation-harness's newer shape: token ids, max_tokens 1; it drops the last (generated) entry.
        int[] a = tokenizer.encode("The cat sat on the mat.");
        int[] b = tokenizer.encode("Tom had a big red ball");
        ArrayNode prompts = JSON.createArrayNode();
        prompts.add(JSON.valueToTree(a));
        prompts.add(JSON.valueToTree(b));
        ObjectNode body = JSON.createObjectNode().put("echo", true).put("logprobs", 2).put("max_tokens", 1)
                .put("temperature", 0);
        body.set("prompt", prompts);
        JsonNode r = post(body);
        assertEquals(2, r.get("choices").size());
        for (int q = 0; q < 2; q++) {
            int[] ids = q == 0 ? a : b;
            JsonNode choice = r.get("choices").get(q);
            assertEquals(q, choice.get("index").asInt());
            int next = generate(ids, 1, 0f, 0)[0];
            int[] all = Arrays.copyOf(ids, ids.length + 1);
            all[ids.length] = next;
            double[][] eval = new ScoringModel(session).logProbs(all, 0);
            JsonNode lps = choice.at("/logprobs/token_logprobs");
            assertEquals(all.length, lps.size());
            for (int p = 1; p < all.length; p++) {
                assertEquals(eval[p - 1][all[p]], lps.get(p).asDouble(), 1e-5, "choice " + q + " position " + p);
            }
            assertEquals(text(ids, new int[] {next}), choice.at("/logprobs/tokens").get(ids.length).asText());
        }
        assertEquals(a.length + b.length, r.at("/usage/prompt_tokens").asInt());
        assertEquals(2, r.at("/usage/completion_tokens").asInt());
    }

    @Test
    void generatedTokensLogprobsAreTheModelsAndTheirTextsMakeTheText() throws Exception {
        String prompt = "Lily went to the park";
        JsonNode choice = post(JSON.createObjectNode().put("prompt", prompt).put("logprobs", 3).put("max_tokens", 12)
                .put("temperature", 0)).at("/choices/0");
        int[] ids = tokenizer.encode(prompt);
        int[] gen = generate(ids, 12, 0f, 0);
        assertEquals(text(ids, gen), choice.get("text").asText());
        int[] all = Arrays.copyOf(ids, ids.length + gen.length);
        System.arraycopy(gen, 0, all, ids.length, gen.length);
        double[][] eval = new ScoringModel(session).logProbs(all, ids.length - 1);
        JsonNode lp = choice.get("logprobs");
        assertEquals(gen.length, lp.get("tokens").size());
        StringBuilder joined = new StringBuilder();
        for (int i = 0; i < gen.length; i++) {
            joined.append(lp.get("tokens").get(i).asText());
            // decoded with the KV cache, scored in one pass: equal up to float rounding
            assertEquals(eval[i][gen[i]], lp.get("token_logprobs").get(i).asDouble(), 1e-4);
            JsonNode top = lp.get("top_logprobs").get(i);
            assertTrue(top.size() >= 1 && top.size() <= 3, top.toString());
            double max = -Double.MAX_VALUE;
            for (JsonNode v : top) {
                max = Math.max(max, v.asDouble());
            }
            assertEquals(lp.get("token_logprobs").get(i).asDouble(), max, 0.0, "greedy: the chosen token is the likeliest");
        }
        assertEquals(choice.get("text").asText(), joined.toString());
        assertEquals(prompt.length(), lp.get("text_offset").get(0).asInt(), "offsets count from the prompt's start");
    }

    @Test
    void nChoicesAndListsOfPromptsComeInOrder() throws Exception {
        List<String> prompts = List.of("Once upon a time", "The dog ran", "One day");
        ObjectNode body = JSON.createObjectNode().put("n", 2).put("max_tokens", 20).put("temperature", 0);
        body.set("prompt", JSON.valueToTree(prompts));
        JsonNode r = post(body);
        assertEquals(6, r.get("choices").size());
        int promptTokens = 0;
        for (int i = 0; i < 6; i++) {
            JsonNode c = r.get("choices").get(i);
            assertEquals(i, c.get("index").asInt());
            int[] ids = tokenizer.encode(prompts.get(i / 2));
            assertEquals(text(ids, generate(ids, 20, 0f, 0)), c.get("text").asText(), "choice " + i);
            promptTokens += i % 2 == 0 ? ids.length : 0;
        }
        assertEquals(promptTokens, r.at("/usage/prompt_tokens").asInt());
    }

    @Test
    void aSeedMakesSamplingReproducibleAndEachChoiceItsOwnSample() throws Exception {
        String prompt = "Once upon a time";
        ObjectNode body = JSON.createObjectNode().put("prompt", prompt).put("n", 4).put("max_tokens", 30)
                .put("temperature", 1.0).put("seed", 7);
        JsonNode first = post(body);
        JsonNode again = post(body);
        Set<String> distinct = new HashSet<>();
        for (int i = 0; i < 4; i++) {
            String t = first.at("/choices/" + i + "/text").asText();
            assertEquals(t, again.at("/choices/" + i + "/text").asText(), "same seed, same choice " + i);
            distinct.add(t);
        }
        assertTrue(distinct.size() >= 3, "independent samples: " + distinct);
        int[] ids = tokenizer.encode(prompt);
        assertEquals(text(ids, generate(ids, 30, 1f, 7)), first.at("/choices/0/text").asText(),
                "choice 0 is what 'generate --seed 7 -t 1' samples");
        JsonNode other = post(body.put("seed", 8));
        assertNotEquals(first.at("/choices/0/text").asText(), other.at("/choices/0/text").asText());
    }

    @Test
    void streamedChoicesOfAPromptListCarryTheirIndex() throws Exception {
        List<String> prompts = List.of("The sun", "A big dog");
        ObjectNode body = JSON.createObjectNode().put("n", 2).put("max_tokens", 15).put("temperature", 0)
                .put("stream", true).put("echo", true);
        body.set("prompt", JSON.valueToTree(prompts));
        HttpResponse<String> r = send(body);
        assertEquals(200, r.statusCode(), r.body());
        StringBuilder[] texts = {new StringBuilder(), new StringBuilder(), new StringBuilder(), new StringBuilder()};
        int finished = 0;
        for (String line : r.body().split("\n")) {
            if (!line.startsWith("data: {")) {
                continue;
            }
            JsonNode c = JSON.readTree(line.substring(6)).at("/choices/0");
            texts[c.get("index").asInt()].append(c.get("text").asText());
            finished += c.get("finish_reason").isNull() ? 0 : 1;
        }
        assertEquals(4, finished);
        for (int i = 0; i < 4; i++) {
            String prompt = prompts.get(i / 2);
            int[] ids = tokenizer.encode(prompt);
            assertEquals(prompt + text(ids, generate(ids, 15, 0f, 0)), texts[i].toString(), "choice " + i);
        }
    }

    @Test
    void fieldsOutOfRangeGet400AndUnknownOnesAreNamedOnce() throws Exception {
        String[][] cases = {
                {"{\"prompt\": \"Hi\", \"n\": 0}", "n"},
                {"{\"prompt\": \"Hi\", \"logprobs\": 21}", "logprobs"},
                {"{\"prompt\": \"Hi\", \"max_tokens\": 0}", "max_tokens"},
                {"{\"prompt\": [1, 600]}", "prompt"},
                {"{\"prompt\": [[1, 2], []]}", "prompt"},
                {"{\"prompt\": \"Hi\", \"stream\": true, \"logprobs\": 1}", "logprobs"},
                {"{\"prompt\": \"Hi\", \"best_of\": 2}", "best_of"},
                {"{\"prompt\": \"Hi\", \"presence_penalty\": 0.5}", "presence_penalty"},
                {"{\"prompt\": [\"a\", \"b\"], \"n\": 129}", "n"},
        };
        for (String[] c : cases) {
            HttpResponse<String> r = HTTP.send(HttpRequest.newBuilder(URI.create(base + "/v1/completions"))
                    .POST(HttpRequest.BodyPublishers.ofString(c[0])).build(), HttpResponse.BodyHandlers.ofString());
            assertEquals(400, r.statusCode(), c[0] + " -> " + r.body());
            assertEquals(c[1], JSON.readTree(r.body()).at("/error/param").asText(), c[0]);
        }
        PrintStream saved = System.err;
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
        try {
            for (int i = 0; i < 2; i++) {
                post(JSON.createObjectNode().put("prompt", "Hi").put("max_tokens", 2).put("frobnicate", true)
                        .put("presence_penalty", 0).put("user", "me"));
            }
        } finally {
            System.setErr(saved);
        }
        String log = err.toString(StandardCharsets.UTF_8);
        assertEquals(1, log.split("'frobnicate'", -1).length - 1, log);
        assertTrue(!log.contains("'user'") && !log.contains("'presence_penalty'"), log);
    }

}
