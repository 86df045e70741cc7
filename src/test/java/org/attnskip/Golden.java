package org.attnskip;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.StreamSupport;

/**
 * One of llama2.c's golden greedy runs, from {@code models/<model>/golden/<name>.ids.json} and
 * {@code <name>.txt} (see the README there).
 *
 * @param text run.c's stdout, byte for byte, read as UTF-8
 */
public record Golden(String prompt, int steps, int[] promptIds, int[] allIds, String text) {
    /** The model folders that have golden outputs, and the prompts each was run with. */
    public static final List<String> MODELS = List.of("stories260K", "stories-deep12");
    public static final List<String> NAMES = List.of("empty", "once_upon_a_time", "lily_and_ben", "the_cat_sat", "one_day_tim");

    public static Golden load(String model, String name) {
        Path dir = Fixtures.model(model + "/golden");
        try {
            JsonNode ids = new ObjectMapper().readTree(dir.resolve(name + ".ids.json").toFile());
            String text = Files.readString(dir.resolve(name + ".txt"), StandardCharsets.UTF_8);
            return new Golden(ids.get("prompt").asText(), ids.get("steps").asInt(), ints(ids.get("prompt_ids")),
                    ints(ids.get("all_ids")), text);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** The checkpoint of a model folder, e.g. stories260K/stories260K.bin. */
    public static Path checkpoint(String model) {
        return Fixtures.model(model + "/" + model + ".bin");
    }

    public static Path tokenizer(String model) {
        return Fixtures.model(model + "/tok512.bin");
    }

    public static int[] ints(JsonNode array) {
        return StreamSupport.stream(array.spliterator(), false).mapToInt(JsonNode::asInt).toArray();
    }

    public static float[] floats(JsonNode array) {
        float[] out = new float[array.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = (float) array.get(i).asDouble();
        }
        return out;
    }
}
