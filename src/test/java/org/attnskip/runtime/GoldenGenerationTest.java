package org.attnskip.runtime;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.attnskip.Fixtures;
import org.attnskip.Golden;
import org.attnskip.export.ExportDtype;
import org.attnskip.export.GraphFlavour;
import org.attnskip.export.Llama2cCheckpoint;
import org.attnskip.export.LlamaWeights;
import org.attnskip.export.ModelDirectory;
import org.attnskip.export.ModelManifest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The exported graph, run greedily with the KV cache, reproduces what llama2.c's run.c printed: the
 * unfused graph with its growing cache, the fused one with its cache updated in place and the
 * static-cache one (opset 24) through its fixed buffers.
 */
class GoldenGenerationTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path tmp;

    @ParameterizedTest
    @EnumSource(GraphFlavour.class)
    void stories260KReproducesEveryGoldenOutput(GraphFlavour flavour) throws IOException {
        checkGolden("stories260K", "stories260K.bin", ExportDtype.FLOAT, flavour);
    }

    @ParameterizedTest
    @EnumSource(GraphFlavour.class)
    void storiesDeep12ReproducesEveryGoldenOutput(GraphFlavour flavour) throws IOException {
        checkGolden("stories-deep12", "stories-deep12.bin", ExportDtype.FLOAT, flavour);
    }

    @Test
    void lastPromptLogitsMatchRunC() throws IOException {
        Path folder = Fixtures.model("stories260K");
        JsonNode golden = JSON.readTree(folder.resolve("golden/once_upon_a_time.logits_last_prompt_pos.json").toFile());
        ModelDirectory dir = export(folder, "stories260K.bin", ExportDtype.FLOAT, GraphFlavour.UNFUSED);
        try (DecoderSession s = DecoderSession.open(dir.modelFile(), Device.CPU)) {
            int[] prompt = Golden.ints(golden.get("prompt_ids"));
            LeftPadding.Inputs in = LeftPadding.prefill(new int[][] {prompt}, 0);
            DecoderSession.Output out = s.run(in.inputIds(), in.attentionMask(), in.positionIds(), s.emptyCache(1));
            out.cache().close();
            float[] logits = out.logits().at(0, golden.get("position").asInt());
            double worst = 0;
            for (int i = 0; i < logits.length; i++) {
                worst = Math.max(worst, Math.abs(logits[i] - golden.get("logits").get(i).floatValue()));
            }
            System.out.printf("stories260K: max |logit delta| vs run.c at the last prompt position %.2e%n", worst);
            assertTrue(worst <= 1e-4, "max |delta| vs run.c logits " + worst);
            assertEquals(432, Sampler.argmax(logits));
        }
    }

    /** fp16 weights, activations and cache against the fp32 export, over the 201 ids of a golden story. */
    @ParameterizedTest
    @EnumSource(GraphFlavour.class)
    void fp16StaysCloseToFp32(GraphFlavour flavour) throws IOException {
        Path folder = Fixtures.model("stories260K");
        int[] ids = Golden.ints(JSON.readTree(folder.resolve("golden/once_upon_a_time.ids.json").toFile()).get("all_ids"));
        ExportDtype[] types = {ExportDtype.FLOAT, ExportDtype.FLOAT16};
        Logits[] runs = new Logits[2];
        for (int k = 0; k < 2; k++) {
            ModelDirectory dir = export(folder, "stories260K.bin", types[k], flavour);
            try (DecoderSession s = DecoderSession.open(dir.modelFile(), Device.CPU)) {
                LeftPadding.Inputs in = LeftPadding.prefill(new int[][] {ids}, 0);
                DecoderSession.Output out = s.run(in.inputIds(), in.attentionMask(), in.positionIds(), s.emptyCache(1));
                out.cache().close();
                runs[k] = out.logits();
            }
        }
        double worst = 0;
        int sameArgmax = 0;
        for (int pos = 0; pos < ids.length; pos++) {
            float[] a = runs[0].at(0, pos);
            float[] b = runs[1].at(0, pos);
            for (int i = 0; i < a.length; i++) {
                worst = Math.max(worst, Math.abs(a[i] - b[i]));
            }
            sameArgmax += Sampler.argmax(a) == Sampler.argmax(b) ? 1 : 0;
        }
        System.out.printf("fp16 vs fp32 on stories260K (%s): max |logit delta| %.4f, same argmax at %d of %d positions%n",
                flavour.cliName(), worst, sameArgmax, ids.length);
        assertTrue(worst <= 0.1, "fp16 max |logit delta| " + worst);
        assertTrue(sameArgmax >= ids.length - 2, "argmax agrees at " + sameArgmax + " of " + ids.length);
    }

    private void checkGolden(String folderName, String checkpoint, ExportDtype dtype, GraphFlavour flavour)
            throws IOException {
        Path folder = Fixtures.model(folderName);
        ModelDirectory dir = export(folder, checkpoint, dtype, flavour);
        Tokenizer tokenizer = Llama2cTokenizer.load(dir.tokenizerFile(), dir.manifest().architecture().vocab());
        List<Path> goldens;
        try (Stream<Path> files = Files.list(folder.resolve("golden"))) {
            goldens = new ArrayList<>(files.filter(p -> p.toString().endsWith(".ids.json")).sorted().toList());
        }
        assertEquals(5, goldens.size());
        try (DecoderSession session = DecoderSession.open(dir.modelFile(), Device.CPU)) {
            assertEquals(flavour != GraphFlavour.UNFUSED, session.updatesCacheInPlace());
            Generator generator = new Generator(session, tokenizer);
            for (Path idsFile : goldens) {
                JsonNode golden = JSON.readTree(idsFile.toFile());
                String name = idsFile.getFileName().toString().replace(".ids.json", "");
                StringBuilder streamed = new StringBuilder();
                Generator.Generation g = generator.generate(golden.get("prompt").asText(),
                        Generator.Options.greedy(golden.get("steps").asInt()), streamed::append);
                assertArrayEquals(Golden.ints(golden.get("prompt_ids")), g.promptIds(), name + " prompt ids");
                assertArrayEquals(Golden.ints(golden.get("generated_ids")), g.generatedIds(), name + " generated ids");
                String expectedText = Files.readString(folder.resolve("golden/" + name + ".txt"));
                assertEquals(expectedText, streamed + "\n", name + " text");
                assertEquals(streamed.toString(), g.text());
            }
        }
    }

    private ModelDirectory export(Path folder, String checkpoint, ExportDtype dtype, GraphFlavour flavour) {
        LlamaWeights w = Llama2cCheckpoint.read(folder.resolve(checkpoint));
        Path tok = folder.resolve("tok512.bin");
        return ModelDirectory.write(tmp.resolve(folder.getFileName() + "-" + flavour.cliName()),
                flavour.export(w, dtype, null),
                ModelManifest.of(w.config, dtype, ModelManifest.TokenizerRef.forFile("tok512.bin"), "llama2c:" + checkpoint,
                        flavour),
                tok, false);
    }
}
