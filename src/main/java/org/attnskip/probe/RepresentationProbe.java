package org.attnskip.probe;

import java.util.ArrayList;
import java.util.List;

/**
 * The per-layer representation metrics over a set of prompts: entropy and curvature from one pass
 * per prompt, augmentation invariance from two augmented copies of each prompt (mean-pooled per
 * prompt). Layer l is the residual stream entering layer l; l = L is the last layer's output.
 */
public final class RepresentationProbe {
    /** NaN where a value cannot be computed (a stream the graph did not expose). */
    public record LayerMetrics(int layer, double promptEntropy, double datasetEntropy, double curvature,
                               double infoNce, double lidar, double dime) {
    }

    private RepresentationProbe() {
    }

    /**
     * @param passes one pass per prompt
     * @param viewA  one pass per prompt, first augmented copy (same order)
     * @param viewB  second augmented copy
     */
    public static List<LayerMetrics> measure(List<HiddenStateRunner.Pass> passes, List<HiddenStateRunner.Pass> viewA,
                                             List<HiddenStateRunner.Pass> viewB, double alpha, long seed) {
        if (passes.size() < 2 || viewA.size() != passes.size() || viewB.size() != passes.size()) {
            throw new IllegalArgumentException("need at least two prompts, each with two augmented copies");
        }
        int streams = passes.get(0).hidden().length;
        List<LayerMetrics> out = new ArrayList<>();
        for (int l = 0; l < streams; l++) {
            if (passes.get(0).hidden()[l] == null) {
                out.add(new LayerMetrics(l, Double.NaN, Double.NaN, Double.NaN, Double.NaN, Double.NaN, Double.NaN));
                continue;
            }
            double entropy = 0;
            double curvature = 0;
            List<double[][]> perPrompt = new ArrayList<>();
            for (HiddenStateRunner.Pass p : passes) {
                double[][] h = RepresentationMetrics.toDouble(p.hidden()[l]);
                perPrompt.add(h);
                entropy += RepresentationMetrics.promptEntropy(h, alpha);
                curvature += RepresentationMetrics.curvature(h);
            }
            double[][] a = pooled(viewA, l);
            double[][] b = pooled(viewB, l);
            out.add(new LayerMetrics(l, entropy / passes.size(), RepresentationMetrics.datasetEntropy(perPrompt, alpha),
                    curvature / passes.size(), RepresentationMetrics.infoNce(a, b, RepresentationMetrics.INFO_NCE_TEMPERATURE),
                    RepresentationMetrics.lidar(a, b),
                    RepresentationMetrics.dime(a, b, alpha, RepresentationMetrics.DIME_PERMUTATIONS, seed)));
        }
        return out;
    }

    private static double[][] pooled(List<HiddenStateRunner.Pass> passes, int layer) {
        double[][] out = new double[passes.size()][];
        for (int i = 0; i < out.length; i++) {
            out[i] = RepresentationMetrics.meanPool(RepresentationMetrics.toDouble(passes.get(i).hidden()[layer]));
        }
        return out;
    }
}
