package org.attnskip.serve;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.attnskip.eval.Task;
import org.attnskip.hostile.MutatorsAccess;
import org.attnskip.onnx.BadInputException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Seeded mutations of completion request bodies and of an eval task file, fed to their parsers
 * directly (many more executions per second than through the CLI): each must parse or be refused
 * as bad input (a 4xx ApiError, invalid JSON, a BadInputException), never fail otherwise.
 * {@code -Dattnskip.parserFuzz=N} runs N of each (default 3000).
 */
class RequestParserFuzzTest {
    private static final List<String> SEEDS = List.of(
            "{\"prompt\":\"Once upon a time\",\"max_tokens\":16,\"temperature\":0}",
            "{\"model\":\"m\",\"prompt\":[\"a\"],\"max_tokens\":8,\"temperature\":0.7,\"top_p\":0.9,\"seed\":7,"
                    + "\"stop\":[\"\\n\",\".\"],\"stream\":true,\"stream_options\":{\"include_usage\":true}}",
            "{\"prompt\":\"x\",\"n\":1,\"best_of\":1,\"stop\":\"end\"}");
    private static final int RUNS = Integer.getInteger("attnskip.parserFuzz", 3000);

    @TempDir
    Path tmp;

    @Test
    void mutatedRequestBodiesParseOrGetA4xx() {
        ObjectMapper json = RequestJson.mapper();
        ServeLimits limits = new ServeLimits(1 << 20, 4096, 4096, 1, 1, 1);
        int parsed = 0;
        int refused = 0;
        for (int i = 0; i < RUNS; i++) {
            Random r = new Random(i);
            byte[] body = MutatorsAccess.json(SEEDS.get(r.nextInt(SEEDS.size())).getBytes(StandardCharsets.UTF_8), r);
            try {
                JsonNode node = RequestJson.parse(json, body);
                CompletionRequest.parse(node, limits);
                parsed++;
            } catch (ApiError e) {
                assertTrue(e.status() >= 400 && e.status() < 500, "case " + i + ": " + e.status());
                refused++;
            } catch (RuntimeException e) {
                throw new AssertionError("case " + i + " crashed the parser on " + new String(body, StandardCharsets.UTF_8), e);
            }
        }
        System.out.println("RequestParserFuzzTest: " + RUNS + " request bodies, parsed " + parsed + ", refused " + refused);
        assertEquals(RUNS, parsed + refused);
        assertTrue(parsed > 0 && refused > 0, "the mutants reach both outcomes");
    }

    /** Found by the test above: bytes that Jackson takes for UTF-32 threw an IOException the server answered with 500. */
    @Test
    void aBodyJacksonReadsAsUtf32IsA400() {
        byte[] body = {0, 0, 0, '{', 'p', 'r', 'o', 'm', 'p', 't'};
        ApiError e = org.junit.jupiter.api.Assertions.assertThrows(ApiError.class,
                () -> RequestJson.parse(RequestJson.mapper(), body));
        assertEquals(400, e.status());
    }

    @Test
    void mutatedTaskFilesLoadOrAreRefused() throws Exception {
        byte[] seed = String.join("\n", Files.readAllLines(Path.of("eval/tasks/capitals.jsonl")).subList(0, 4))
                .getBytes(StandardCharsets.UTF_8);
        byte[] cloze = String.join("\n", Files.readAllLines(Path.of("eval/tasks/recall-object.jsonl")).subList(0, 4))
                .getBytes(StandardCharsets.UTF_8);
        int loaded = 0;
        int refused = 0;
        Path file = tmp.resolve("task.jsonl");
        for (int i = 0; i < RUNS; i++) {
            Random r = new Random(1_000_000L + i);
            Files.write(file, MutatorsAccess.json(r.nextBoolean() ? seed : cloze, r));
            try {
                Task.read(file);
                loaded++;
            } catch (BadInputException e) {
                assertEquals(1, e.getMessage().lines().count(), e.getMessage());
                refused++;
            } catch (RuntimeException e) {
                throw new AssertionError("case " + i + " crashed the task reader on " + Files.readString(file), e);
            }
        }
        System.out.println("RequestParserFuzzTest: " + RUNS + " task files, loaded " + loaded + ", refused " + refused);
        assertTrue(loaded > 0 && refused > 0, "the mutants reach both outcomes");
    }
}
