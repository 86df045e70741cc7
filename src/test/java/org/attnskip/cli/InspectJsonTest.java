package org.attnskip.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.attnskip.CliRun;
import org.attnskip.Fixtures;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** inspect --json on each shared third-party graph: the layer count and every layer's KV names, read from stdout. */
class InspectJsonTest {

    /**
     * What the shared models' README says about one graph. KV names are format strings taking the
     * layer index; kvBytes is per token, over all layers.
     */
    record Expected(String file, String dialect, int layers, List<String> kvInputs, List<String> kvOutputs,
                    String layout, long kvBytes) {
        @Override
        public String toString() {
            return file;
        }
    }

    static Stream<Expected> sharedGraphs() {
        return Stream.of(
                // 2 layers x (key + value) x 1 head x 16 dims x 2 bytes (fp16)
                new Expected("ortgenai-llama-fp16/model.onnx", "ort-genai-mha", 2,
                        List.of("past_key_values.%d.key", "past_key_values.%d.value"),
                        List.of("present.%d.key", "present.%d.value"), "separate", 2 * 2 * 16 * 2),
                // 5 layers x 2 x 4 heads x 8 dims x 4 bytes
                new Expected("ortgenai-gpt2-fp32/past.onnx", "ort-fused-attention", 5,
                        List.of("past_%d"), List.of("present_%d"), "stacked", 5 * 2 * 4 * 8 * 4),
                // 12 layers x 2 x 2 heads x 2 dims x 4 bytes
                new Expected("torch-gpt2-past/gpt2_past.onnx", "unfused", 12,
                        List.of("past_%d"), List.of("present_%d"), "stacked", 12 * 2 * 2 * 2 * 4));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("sharedGraphs")
    void layersAndKvNames(Expected e) throws IOException {
        CliRun r = CliRun.of("inspect", "--json", Fixtures.model(e.file()).toString());
        assertEquals(0, r.code(), r.err());
        JsonNode json = new ObjectMapper().readTree(r.out());

        assertEquals(e.dialect(), json.get("dialect").asText());
        assertEquals(e.layers(), json.get("layers").asInt());
        assertEquals(e.layers(), json.get("kv").size());
        assertEquals(e.layers(), json.get("attention").size());
        List<String> graphInputs = texts(json.get("inputs"));
        for (int i = 0; i < e.layers(); i++) {
            JsonNode kv = json.get("kv").get(i);
            assertEquals(i, kv.get("layer").asInt());
            List<String> inputs = names(e.kvInputs(), i);
            assertEquals(inputs, texts(kv.get("inputs")), "layer " + i);
            assertEquals(names(e.kvOutputs(), i), texts(kv.get("outputs")), "layer " + i);
            assertEquals(e.layout(), kv.get("layout").asText(), "layer " + i);
            assertTrue(graphInputs.containsAll(inputs), "KV inputs of layer " + i + " are graph inputs: " + graphInputs);
        }
        assertEquals(e.kvBytes(), json.get("kv_bytes_per_token").asLong());
        assertFalse(json.get("roles").has("logits_to_keep"), "third-party graphs have no logits_to_keep");
        for (String key : new String[] {"hidden_size", "num_heads", "num_kv_heads", "head_dim", "vocab_size",
                "outputs", "params"}) {
            assertTrue(json.has(key), key);
        }
    }

    /** attnskip's exports (and what optimize writes from them) name the input that keeps the last n positions' logits. */
    @ParameterizedTest
    @org.junit.jupiter.params.provider.ValueSource(strings = {"graphs/tiny-llama", "graphs/tiny-llama-drop0.5", "graphs/tiny-llama-freeze0.5"})
    void exportsNameTheirLogitsToKeepInput(String dir) throws IOException {
        CliRun r = CliRun.of("inspect", "--json", dir);
        assertEquals(0, r.code(), r.err());
        JsonNode roles = new ObjectMapper().readTree(r.out()).get("roles");
        assertEquals("logits", roles.get("logits").asText());
        assertEquals("logits_to_keep", roles.get("logits_to_keep").asText());
    }

    private static List<String> names(List<String> formats, int layer) {
        return formats.stream().map(f -> String.format(f, layer)).toList();
    }

    private static List<String> texts(JsonNode array) {
        List<String> v = new ArrayList<>();
        array.forEach(n -> v.add(n.asText()));
        return v;
    }
}
