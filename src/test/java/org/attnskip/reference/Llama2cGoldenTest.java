package org.attnskip.reference;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.attnskip.Fixtures;
import org.attnskip.Golden;
import org.attnskip.export.Llama2cCheckpoint;
import org.attnskip.runtime.Llama2cTokenizer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.IOException;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.*;

/** The reference implementation and the tokenizer reproduce llama2.c's run.c exactly. */
class Llama2cGoldenTest {

    static Stream<Arguments> goldenRuns() {
        return Golden.MODELS.stream().flatMap(model -> Golden.NAMES.stream().map(name -> Arguments.of(model, name)));
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("goldenRuns")
    void greedyGenerationMatchesRunC(String model, String name) {
        Golden golden = Golden.load(model, name);
        ReferenceLlama reference = new ReferenceLlama(Llama2cCheckpoint.read(Golden.checkpoint(model)));
        Llama2cTokenizer tokenizer = Llama2cTokenizer.load(Golden.tokenizer(model), reference.config().vocabSize());

        int[] promptIds = tokenizer.encode(golden.prompt());
        assertArrayEquals(golden.promptIds(), promptIds, "prompt ids");
        int[] all = reference.generateGreedy(promptIds, golden.steps());
        assertArrayEquals(golden.allIds(), all, "all ids");
        assertEquals(golden.text(), tokenizer.textOf(all) + "\n", "run.c's stdout");
    }

    @Test
    void logitsAtTheLastPromptPosition() throws IOException {
        JsonNode expected = new ObjectMapper().readTree(
                Fixtures.model("stories260K/golden/once_upon_a_time.logits_last_prompt_pos.json").toFile());
        int[] promptIds = Golden.ints(expected.get("prompt_ids"));
        int position = expected.get("position").asInt();
        float[] want = Golden.floats(expected.get("logits"));

        ReferenceLlama reference = new ReferenceLlama(Llama2cCheckpoint.read(Golden.checkpoint("stories260K")));
        float[] got = null;
        for (int pos = 0; pos <= position; pos++) {
            got = reference.forward(promptIds[pos], pos);
        }
        assertEquals(want.length, got.length);
        float maxDiff = 0;
        for (int i = 0; i < want.length; i++) {
            maxDiff = Math.max(maxDiff, Math.abs(want[i] - got[i]));
        }
        assertTrue(maxDiff <= 1e-4f, "max |logit difference| " + maxDiff);
        assertEquals(expected.get("top5").get(0).get("id").asInt(), ReferenceLlama.argmax(got));

        // the full-sequence pass gives the same logits as decoding step by step
        float[][] all = reference.logitsAllPositions(promptIds);
        assertArrayEquals(got, all[position]);
        System.out.printf("stories260K once_upon_a_time: max |logit - llama2.c| at position %d = %.3g%n", position, maxDiff);
    }
}
