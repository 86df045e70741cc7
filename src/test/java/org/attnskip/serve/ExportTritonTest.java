package org.attnskip.serve;

import org.attnskip.CliRun;
import org.attnskip.StoriesExport;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** attnskip export-triton on stories260K with attention dropped above 0.6: only layers 0-2 keep a cache. */
class ExportTritonTest {
    @TempDir
    Path tmp;

    private static String tensor(String name, String type, String dims) {
        return "    name: \"" + name + "\"\n    data_type: " + type + "\n    dims: [ " + dims + " ]\n";
    }

    @Test
    void configListsTheDropGraphsRealInputsAndOutputs() throws Exception {
        Path dir = StoriesExport.export(tmp, "stories260K");
        Path drop = tmp.resolve("drop06");
        assertEquals(0, CliRun.of("optimize", dir.toString(), "-o", drop.toString(), "--drop-attn-above", "0.6").code());
        Path repo = tmp.resolve("triton-repo");
        assertEquals(0, CliRun.of("export-triton", drop.toString(), "-o", repo.toString()).code());

        assertTrue(Files.size(repo.resolve("drop06/1/model.onnx")) > 100_000);
        String config = Files.readString(repo.resolve("drop06/config.pbtxt"));
        assertTrue(config.startsWith("name: \"drop06\"\nbackend: \"onnxruntime\"\nmax_batch_size: 0\n"), config);
        assertTrue(config.contains(tensor("input_ids", "TYPE_INT64", "-1, -1")), config);
        assertTrue(config.contains(tensor("attention_mask", "TYPE_INT64", "-1, -1")), config);
        assertTrue(config.contains(tensor("position_ids", "TYPE_INT64", "-1, -1")), config);
        assertTrue(config.contains(tensor("logits", "TYPE_FP32", "-1, -1, 512")), config);
        assertTrue(config.contains(tensor("logits_to_keep", "TYPE_INT64", "1")), config);
        for (int layer = 0; layer < 5; layer++) {
            for (String kind : new String[] {"key", "value"}) {
                String past = tensor("past_key_values." + layer + "." + kind, "TYPE_FP32", "-1, 4, -1, 8");
                String present = tensor("present." + layer + "." + kind, "TYPE_FP32", "-1, 4, -1, 8");
                assertEquals(layer < 3, config.contains(past), "layer " + layer + " " + kind);
                assertEquals(layer < 3, config.contains(present), "layer " + layer + " " + kind);
            }
        }
        assertFalse(config.contains("past_key_values.3"));
        // 10 inputs: ids, mask, positions, logits_to_keep and 6 caches; outputs: logits and 6 caches.
        assertEquals(10 + 7, config.split("name: \"", -1).length - 2);

        assertEquals(2, CliRun.of("export-triton", drop.toString(), "-o", repo.toString()).code(), "refuses to overwrite");
    }
}
