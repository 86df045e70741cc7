package org.attnskip.runtime;

import org.attnskip.layout.DecoderLayout;
import org.attnskip.layout.KvCacheIo;
import org.attnskip.layout.LayerLayout;
import org.attnskip.layout.LayoutDiscovery;
import org.attnskip.layout.StaticCache;
import org.attnskip.layout.StepMaskWidth;
import org.attnskip.onnx.BadInputException;
import org.attnskip.onnx.LoadedModel;
import org.attnskip.onnx.OnnxModelIO;
import org.attnskip.rewrite.RewriteMetadata;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * The names under which a decoder graph takes its token inputs and KV caches and gives its logits
 * and next caches, as layout discovery found them: the runtime never guesses an exporter's names.
 *
 * @param attentionMask null when the graph takes none (so for positionIds)
 * @param caches        one entry per cache input, layer by layer, key before value
 * @param staticCache   where the caches are fixed buffers written at an index (opset 24), the inputs
 *                      that say where to write and how much to read; else null
 * @param logitsToKeep  the input that asks for the last positions' logits only (0: all), or null
 * @param stepMaskWidthLimit the widest mask a decode step on an in-place cache may take
 *                      ({@link StepMaskWidth#limit}: UNBOUNDED, or 0 for none wider than its positions)
 */
public record DecoderIo(String inputIds, String attentionMask, String positionIds, String logits,
                        List<CachePair> caches, StaticCache staticCache, String logitsToKeep, long stepMaskWidthLimit) {
    /**
     * A cache input and the output that holds its next value; {@code stacked} when one tensor
     * holds key and value along a leading axis of 2; {@code inPlace} when the attention op can write
     * the new positions into the past buffer itself, if the present output is bound to that buffer.
     */
    public record CachePair(int layer, String past, String present, boolean stacked, boolean inPlace) {
    }

    /**
     * Discovers the layout of a model file (or model directory) and takes its names. Discovery
     * sees only the layers that still attend; where attnskip dropped some, its metadata names them,
     * so the caches keep the model's own layer numbers.
     */
    public static DecoderIo discover(Path model) {
        LoadedModel loaded = OnnxModelIO.load(model);
        Set<Integer> dropped = new TreeSet<>();
        Map<String, String> props = new HashMap<>();
        loaded.proto().getMetadataPropsList().forEach(p -> props.put(p.getKey(), p.getValue()));
        String layers = props.getOrDefault(RewriteMetadata.PREFIX + "layers", "");
        if ("drop".equals(props.get(RewriteMetadata.PREFIX + "mode")) && !layers.isBlank()) {
            for (String layer : layers.split(",")) {
                dropped.add(Integer.parseInt(layer.trim()));
            }
        }
        DecoderLayout layout = LayoutDiscovery.discoverToRun(loaded.graph());
        return of(layout, dropped, StepMaskWidth.limit(loaded.graph(), layout.attentionMask()));
    }

    /**
     * @param dropped            the model's layers whose attention is gone (discovery numbers only the others)
     * @param stepMaskWidthLimit the widest mask a decode step may take on an in-place cache ({@link StepMaskWidth})
     */
    public static DecoderIo of(DecoderLayout layout, Set<Integer> dropped, long stepMaskWidthLimit) {
        if (!layout.hasLmHead()) {
            throw new BadInputException("the graph ends in a hidden state ('" + layout.logits() + "'), not in logits: "
                    + "without an LM head there is nothing to sample or score");
        }
        List<CachePair> caches = new ArrayList<>();
        int number = -1;
        for (LayerLayout layer : layout.layers()) {
            number++;
            while (dropped.contains(number)) {
                number++;
            }
            KvCacheIo kv = layer.kv();
            if (kv.isEmpty()) {
                continue;
            }
            if (kv.inputs().size() != kv.outputs().size()) {
                throw new BadInputException("layer " + number + " has cache inputs " + kv.inputs()
                        + " but outputs " + kv.outputs());
            }
            for (int i = 0; i < kv.inputs().size(); i++) {
                caches.add(new CachePair(number, kv.inputs().get(i), kv.outputs().get(i),
                        kv.layout() == KvCacheIo.Layout.STACKED, layer.cacheUpdatedInPlace()));
            }
        }
        return new DecoderIo(layout.inputIds(), layout.attentionMask(), layout.positionIds(), layout.logits(),
                List.copyOf(caches), StaticCache.of(layout).orElse(null), layout.logitsToKeep(), stepMaskWidthLimit);
    }
}
