package org.attnskip.probe;

import org.attnskip.reference.Vectors;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The per-layer representation metrics over a set of prompts: entropy and curvature from one pass
 * per prompt, augmentation invariance from two augmented copies of each prompt (mean-pooled per
 * prompt), once per augmentation kind. Layer l is the residual stream entering layer l; l = L is
 * the last layer's output.
 */
public final class RepresentationProbe {
    /** InfoNCE, LiDAR and DiME between the two copies of one augmentation kind. */
    public record Invariance(double infoNce, double lidar, double dime) {
        static final Invariance MISSING = new Invariance(Double.NaN, Double.NaN, Double.NaN);
    }

    /**
     * NaN where a value cannot be computed (a stream the graph did not expose).
     *
     * @param invariance per augmentation kind ({@link AugmentedViews#key}), in the order measured
     */
    public record LayerMetrics(int layer, double promptEntropy, double datasetEntropy, double curvature,
                               Map<String, Invariance> invariance) {
    }

    /** One pass per prompt for each of the two augmented copies (same prompt order as the plain passes). */
    public record Views(List<HiddenStateRunner.Pass> a, List<HiddenStateRunner.Pass> b) {
    }

    private RepresentationProbe() {
    }

    /**
     * @param passes one pass per prompt
     * @param views  per augmentation kind, the passes over the two augmented copies
     */
    public static List<LayerMetrics> measure(List<HiddenStateRunner.Pass> passes, Map<Augmentations.Kind, Views> views,
                                             double alpha, long seed) {
        if (passes.size() < 2 || views.isEmpty()) {
            throw new IllegalArgumentException("need at least two prompts and at least one augmentation kind");
        }
        for (Views v : views.values()) {
            if (v.a().size() != passes.size() || v.b().size() != passes.size()) {
                throw new IllegalArgumentException("each prompt needs two augmented copies per augmentation kind");
            }
        }
        int streams = passes.get(0).hidden().length;
        List<LayerMetrics> out = new ArrayList<>();
        for (int l = 0; l < streams; l++) {
            Map<String, Invariance> invariance = new LinkedHashMap<>();
            if (passes.get(0).hidden()[l] == null) {
                views.keySet().forEach(k -> invariance.put(AugmentedViews.key(k), Invariance.MISSING));
                out.add(new LayerMetrics(l, Double.NaN, Double.NaN, Double.NaN, invariance));
                continue;
            }
            double entropy = 0;
            double curvature = 0;
            List<double[][]> perPrompt = new ArrayList<>();
            for (HiddenStateRunner.Pass p : passes) {
                double[][] h = Vectors.toDouble(p.hidden()[l]);
                perPrompt.add(h);
                entropy += RepresentationMetrics.promptEntropy(h, alpha);
                curvature += RepresentationMetrics.curvature(h);
            }
            for (Map.Entry<Augmentations.Kind, Views> e : views.entrySet()) {
                invariance.put(AugmentedViews.key(e.getKey()), invariance(e.getValue(), l, alpha, seed));
            }
            out.add(new LayerMetrics(l, entropy / passes.size(), RepresentationMetrics.datasetEntropy(perPrompt, alpha),
                    curvature / passes.size(), invariance));
        }
        return out;
    }

    private static Invariance invariance(Views views, int layer, double alpha, long seed) {
        double[][] a = pooled(views.a(), layer);
        double[][] b = pooled(views.b(), layer);
        return new Invariance(RepresentationMetrics.infoNce(a, b, RepresentationMetrics.INFO_NCE_TEMPERATURE),
                RepresentationMetrics.lidar(a, b), RepresentationMetrics.dime(a, b, alpha, RepresentationMetrics.DIME_PERMUTATIONS, seed));
    }

    private static double[][] pooled(List<HiddenStateRunner.Pass> passes, int layer) {
        double[][] out = new double[passes.size()][];
        for (int i = 0; i < out.length; i++) {
            out[i] = Vectors.meanPool(Vectors.toDouble(passes.get(i).hidden()[layer]));
        }
        return out;
    }
}
