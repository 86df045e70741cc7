package org.attnskip.rewrite;

import ai.onnx.proto.OnnxMl.NodeProto;
import ai.onnx.proto.OnnxMl.ValueInfoProto;
import org.attnskip.CliRun;
import org.attnskip.Fixtures;
import org.attnskip.OrtFeeds;
import org.attnskip.layout.DecoderLayout;
import org.attnskip.layout.LayerLayout;
import org.attnskip.layout.LayoutDiscovery;
import org.attnskip.onnx.LoadedModel;
import org.attnskip.onnx.OnnxModelIO;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** drop on every shared third-party graph: it loads and runs, and exactly the right pieces are gone. */
class DropOnThirdPartyGraphsTest {
    @TempDir
    Path tmp;

    @ParameterizedTest
    @CsvSource({
            "ortgenai-llama-fp16/model.onnx, 0.5, 1",
            "ortgenai-gpt2-fp32/past.onnx, 0.6, 3",
            "torch-gpt2-past/gpt2_past.onnx, 0.6, 8",
            "torch-gpt2-past/gpt2_past.onnx, 0.0, 0"})
    void dropRemovesAttentionAndKv(String relative, String threshold, int k) throws Exception {
        Path source = Fixtures.model(relative);
        LoadedModel original = OnnxModelIO.load(source);
        DecoderLayout before = LayoutDiscovery.discover(original.graph());
        int layers = before.numLayers();
        Path out = tmp.resolve("dropped.onnx");

        assertEquals(0, CliRun.of("optimize", source.toString(), "-o", out.toString(), "--drop-attn-above", threshold).code());

        LoadedModel rewritten = OnnxModelIO.load(out);
        Set<String> inputs = names(rewritten.proto().getGraph().getInputList());
        Set<String> outputs = names(rewritten.proto().getGraph().getOutputList());
        for (LayerLayout l : before.layers()) {
            boolean dropped = l.index() >= k;
            for (String in : l.kv().inputs()) {
                // with every layer dropped, torch's graph still reads past_0's shape for the positions
                boolean keptForShape = k == 0 && in.equals("past_0");
                assertEquals(!dropped || keptForShape, inputs.contains(in), in);
            }
            for (String o : l.kv().outputs()) {
                assertEquals(!dropped, outputs.contains(o), o);
            }
        }
        long cores = rewritten.proto().getGraph().getNodeList().stream()
                .filter(n -> before.layer(0).attention().core().getOpType().equals(n.getOpType())).count();
        assertEquals(k, cores, "attention nodes left");
        assertTrue(bytesOnDisk(rewritten) < bytesOnDisk(original), "dead weights leave the file or its data file");

        Map<String, String> meta = RewriteMetadata.read(rewritten.proto());
        assertEquals("drop", meta.get("mode"));
        assertEquals(threshold, meta.get("threshold"));

        if (k == 0) {
            return; // no attention left: not a decoder by discovery's definition, nothing more to compare
        }
        DecoderLayout after = LayoutDiscovery.discover(rewritten.graph());
        // KV bytes per token fall by exactly the dropped fraction
        assertEquals(before.kvBytesPerToken() * k, after.kvBytesPerToken() * layers);

        // it runs, and the layers below k are untouched: their present KV is bit-identical
        Map<String, float[]> a = OrtFeeds.run(source, before, 1, 3, 5);
        Map<String, float[]> b = OrtFeeds.run(out, after, 1, 3, 5);
        for (int i = 0; i < k; i++) {
            for (String o : before.layer(i).kv().outputs()) {
                assertArrayEquals(a.get(o), b.get(o), 0f, o);
            }
        }
        float[] logits = b.get(before.logits());
        for (float v : logits) {
            assertTrue(Float.isFinite(v));
        }
        assertFalse(java.util.Arrays.equals(a.get(before.logits()), logits), "dropping attention changes the output");
    }

    @ParameterizedTest
    @CsvSource({
            "ortgenai-llama-fp16/model.onnx, --drop-attn-above",
            "ortgenai-gpt2-fp32/past.onnx, --drop-attn-above",
            "torch-gpt2-past/gpt2_past.onnx, --drop-attn-above",
            "ortgenai-llama-fp16/model.onnx, --freeze-above",
            "ortgenai-gpt2-fp32/past.onnx, --freeze-above",
            "torch-gpt2-past/gpt2_past.onnx, --freeze-above",
            "ortgenai-llama-fp16/model.onnx, --random-kv-above",
            "ortgenai-gpt2-fp32/past.onnx, --random-kv-above",
            "torch-gpt2-past/gpt2_past.onnx, --random-kv-above"})
    void thresholdOneChangesNothing(String relative, String mode) throws Exception {
        Path source = Fixtures.model(relative);
        DecoderLayout layout = LayoutDiscovery.discover(OnnxModelIO.load(source).graph());
        Path out = tmp.resolve("same.onnx");
        assertEquals(0, CliRun.of("optimize", source.toString(), "-o", out.toString(), mode, "1.0").code());
        Map<String, float[]> a = OrtFeeds.run(source, layout, 1, 3, 9);
        Map<String, float[]> b = OrtFeeds.run(out, layout, 1, 3, 9);
        assertEquals(a.keySet(), b.keySet());
        for (String name : a.keySet()) {
            assertArrayEquals(a.get(name), b.get(name), 0f, name);
        }
    }

    /**
     * The dialects we have no file of, built by the tests: drop runs, random runs and is discovered
     * again, freeze rewrites GroupQueryAttention and refuses the ONNX Attention operator.
     */
    @ParameterizedTest
    @org.junit.jupiter.params.provider.EnumSource(org.attnskip.layout.ThirdPartyGraphs.Dialect.class)
    void builtDialects(org.attnskip.layout.ThirdPartyGraphs.Dialect dialect) throws Exception {
        Path source = org.attnskip.layout.ThirdPartyGraphs.write(dialect, 4, 3, tmp.resolve(dialect + ".onnx"));
        DecoderLayout before = LayoutDiscovery.discover(OnnxModelIO.load(source).graph());
        Path out = tmp.resolve(dialect + "-drop.onnx");
        assertEquals(0, CliRun.of("optimize", source.toString(), "-o", out.toString(), "--drop-attn-above", "0.5").code());
        DecoderLayout after = LayoutDiscovery.discover(OnnxModelIO.load(out).graph());
        assertEquals(2, after.numLayers());
        assertEquals(before.kvBytesPerToken() / 2, after.kvBytesPerToken());
        Map<String, float[]> a = OrtFeeds.run(source, before, 3, 2, 5);
        Map<String, float[]> b = OrtFeeds.run(out, after, 3, 2, 5);
        for (int i = 0; i < 2; i++) {
            for (String o : before.layer(i).kv().outputs()) {
                assertArrayEquals(a.get(o), b.get(o), 0f, o);
            }
        }
        assertFalse(b.containsKey("present.2.key") || b.containsKey("present.3.value"));

        Path random = tmp.resolve(dialect + "-random.onnx");
        assertEquals(0, CliRun.of("optimize", source.toString(), "-o", random.toString(), "--random-kv-above", "0.5").code());
        assertTrue(OnnxModelIO.load(random).graph().isGraphInput(RandomNoisePass.NOISE_INPUT));
        // discovery sees through the noise: every layer, and the noise input is no layer's cache
        DecoderLayout randomised = LayoutDiscovery.discover(OnnxModelIO.load(random).graph());
        assertEquals(before.numLayers(), randomised.numLayers());
        assertEquals(before.kvBytesPerToken(), randomised.kvBytesPerToken());

        Path frozen = tmp.resolve(dialect + "-freeze.onnx");
        int code = CliRun.of("optimize", source.toString(), "-o", frozen.toString(), "--freeze-above", "0.5").code();
        if (dialect == org.attnskip.layout.ThirdPartyGraphs.Dialect.ONNX_ATTENTION) {
            assertEquals(2, code, "freeze on the ONNX Attention operator is not implemented: exit 2");
            assertFalse(Files.exists(frozen));
        } else {
            // GroupQueryAttention, packed or separate: both freeze flavours rewrite it (numbers: GqaFreezeMatchesReferenceTest)
            assertEquals(0, code);
            assertEquals(before.numLayers(), LayoutDiscovery.discover(OnnxModelIO.load(frozen).graph()).numLayers());
        }
    }

    /** The model file plus every external data file its tensors name. */
    private static long bytesOnDisk(LoadedModel m) throws java.io.IOException {
        Set<Path> files = new HashSet<>(List.of(m.file()));
        for (var t : m.proto().getGraph().getInitializerList()) {
            if (org.attnskip.onnx.ExternalData.isExternal(t)) {
                files.add(m.baseDir().resolve(org.attnskip.onnx.ExternalData.of(t).location()));
            }
        }
        long total = 0;
        for (Path f : files) {
            total += Files.size(f);
        }
        return total;
    }

    private static Set<String> names(List<ValueInfoProto> values) {
        Set<String> s = new HashSet<>();
        values.forEach(v -> s.add(v.getName()));
        return s;
    }
}
