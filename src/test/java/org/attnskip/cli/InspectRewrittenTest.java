package org.attnskip.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.attnskip.CliRun;
import org.attnskip.rewrite.RandomNoisePass;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** inspect on freeze and random outputs: discovery sees through the nodes those passes insert between layers. */
class InspectRewrittenTest {
    private static final Path TINY = Path.of("graphs/tiny-llama");

    @TempDir
    Path tmp;

    @Test
    void committedFreezeGraph() throws Exception {
        JsonNode j = inspect(Path.of("graphs/tiny-llama-freeze0.5"));
        assertRewrite(j, "freeze", "0.5", "2,3");
        assertLayersOwnTheirCache(j, 4);
        assertEquals(inspect(TINY).get("kv_bytes_per_token").asLong(), j.get("kv_bytes_per_token").asLong());
    }

    @ParameterizedTest
    @ValueSource(strings = {"--freeze-logits=all", "--noise=gaussian", "--noise=shuffle", "--noise=angle:30"})
    void rewrittenFromLayerTwo(String variant) throws Exception {
        Path out = tmp.resolve("rewritten");
        String mode = variant.startsWith("--noise") ? "--random-kv-above" : "--freeze-above";
        CliRun r = CliRun.of("optimize", TINY.toString(), "-o", out.toString(), mode, "0.5", variant);
        assertEquals(0, r.code(), r.err());
        JsonNode j = inspect(out);
        assertRewrite(j, mode.equals("--freeze-above") ? "freeze" : "random", "0.5", "2,3");
        assertLayersOwnTheirCache(j, 4);
        // the noise (or permutation) input enters the stream; it is no layer's cache
        assertEquals(inspect(TINY).get("kv_bytes_per_token").asLong(), j.get("kv_bytes_per_token").asLong());
    }

    @Test
    void randomAtLayerZeroKeepsNoiseOutOfTheCache() throws Exception {
        Path out = tmp.resolve("random0");
        assertEquals(0, CliRun.of("optimize", TINY.toString(), "-o", out.toString(), "--random-kv-above", "0").code());
        JsonNode j = inspect(out);
        assertLayersOwnTheirCache(j, 4);
        assertEquals(List.of("past_key_values.0.key", "past_key_values.0.value"), strings(j.get("kv").get(0).get("inputs")));
        assertEquals(true, strings(j.get("inputs")).contains(RandomNoisePass.NOISE_INPUT));
    }

    private static JsonNode inspect(Path model) throws Exception {
        CliRun r = CliRun.of("inspect", model.toString(), "--json");
        assertEquals(0, r.code(), r.err());
        return new ObjectMapper().readTree(r.out());
    }

    private static void assertRewrite(JsonNode j, String mode, String threshold, String layers) {
        JsonNode rw = j.get("rewrite");
        assertEquals(mode, rw.get("mode").asText());
        assertEquals(threshold, rw.get("threshold").asText());
        assertEquals(layers, rw.get("layers").asText());
    }

    /** Layer i reads past_key_values.i.* and writes present.i.*, nothing else. */
    private static void assertLayersOwnTheirCache(JsonNode j, int layers) {
        assertEquals(layers, j.get("layers").asInt());
        for (int i = 0; i < layers; i++) {
            JsonNode kv = j.get("kv").get(i);
            assertEquals(List.of("past_key_values." + i + ".key", "past_key_values." + i + ".value"), strings(kv.get("inputs")));
            assertEquals(List.of("present." + i + ".key", "present." + i + ".value"), strings(kv.get("outputs")));
        }
    }

    private static List<String> strings(JsonNode array) {
        return java.util.stream.StreamSupport.stream(array.spliterator(), false).map(JsonNode::asText).toList();
    }
}
