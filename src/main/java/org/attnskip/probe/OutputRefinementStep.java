package org.attnskip.probe;

import org.attnskip.export.ExportedWeights;
import org.attnskip.export.LlamaWeights;
import org.attnskip.export.ModelDirectory;
import org.attnskip.reference.AffineMap;
import org.attnskip.rewrite.LayerSelection;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.function.Consumer;

/**
 * Decides whether calibrated drop's ridge-fitted maps get {@link OutputRefinement}, and runs it: it
 * needs the top block of layers dropped, full-rank maps, epochs above 0 and the weights in Java form
 * (a model directory attnskip export wrote). Otherwise the ridge maps stay, and the note says why.
 */
public final class OutputRefinementStep {
    /** The maps to use and the model metadata's "refine" entry. */
    public record Result(Map<Integer, AffineMap> maps, String note) {
    }

    private OutputRefinementStep() {
    }

    /** @param baseline the baseline's model.onnx (or its directory) */
    public static Result apply(Path baseline, LayerSelection selection, CalibrationText text, Map<Integer, AffineMap> maps,
                               OutputRefinement.Settings settings, Consumer<String> progress) {
        if (settings.epochs() <= 0) {
            return new Result(maps, "none");
        }
        if (maps.values().stream().anyMatch(AffineMap::lowRank)) {
            return skipped(maps, "the maps are low rank", progress);
        }
        Path dir = Files.isDirectory(baseline) ? baseline : baseline.toAbsolutePath().getParent();
        if (dir == null || !ModelDirectory.isModelDirectory(dir)) {
            return skipped(maps, "it needs a model directory attnskip export wrote", progress);
        }
        LlamaWeights weights;
        try {
            weights = ExportedWeights.read(ModelDirectory.read(dir));
        } catch (ExportedWeights.NotExporterGraph | ExportedWeights.TooLargeForHeap e) {
            return skipped(maps, e.getMessage(), progress);
        }
        if (!OutputRefinement.applies(selection.layers(), weights.config.layers())) {
            return skipped(maps, "the dropped layers are not the top block", progress);
        }
        // the original next-token distributions of every calibration token are held in the heap
        long targetBytes = text.tokens() * (long) weights.config.vocabSize() * Float.BYTES;
        if (targetBytes > Runtime.getRuntime().maxMemory() / 4) {
            return skipped(maps, "the calibration tokens' distributions (" + targetBytes / (1 << 20)
                    + " MB) would not fit a quarter of the Java heap; use fewer --calibration-tokens", progress);
        }
        Map<Integer, AffineMap> refined = OutputRefinement.refine(weights, text.sequences(), maps, settings, progress);
        return new Result(refined, "output-kl, " + settings.epochs() + " epochs, lr " + settings.learningRate()
                + ", batch " + settings.batch());
    }

    private static Result skipped(Map<Integer, AffineMap> maps, String why, Consumer<String> progress) {
        progress.accept("maps not refined against the output: " + why);
        return new Result(maps, "none (" + why + ")");
    }
}
