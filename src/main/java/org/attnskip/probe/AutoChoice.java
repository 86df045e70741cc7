package org.attnskip.probe;

import org.attnskip.rewrite.FreezeForm;
import org.attnskip.rewrite.FreezeKv;
import org.attnskip.rewrite.LayerSelection;
import org.attnskip.rewrite.Mode;
import org.attnskip.rewrite.RewriteRequest;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * What {@code optimize --auto} applies: the recommendation for one manipulation, measured on the
 * user's text. For drop, the greedy non-contiguous set wins over the contiguous k when it drops
 * more layers; either way the chosen set was measured as a whole.
 *
 * @param selection the layers to rewrite
 * @param evidence  the measurement of exactly that selection
 * @param notes     lines for the change report
 * @param metadata  entries for the model's attnskip.* metadata (recommendation, tolerance, quality)
 */
public record AutoChoice(Mode mode, LayerSelection selection, SensitivityRow evidence, List<String> notes,
                         Map<String, String> metadata) {

    /**
     * Runs the curve of {@code mode} (drop: also single-layer drops and the greedy set) and picks;
     * freeze is measured in the evaluation form of {@code flavour}.
     */
    public static AutoChoice choose(SensitivityExperiment experiment, Mode mode, FreezeKv flavour, QualityTolerance tolerance) {
        int L = experiment.numLayers();
        RewriteRequest m = switch (mode) {
            case DROP -> RewriteRequest.drop(experiment.contextLength());
            case FREEZE -> RewriteRequest.freeze(flavour, FreezeForm.EVALUATION);
            case RANDOM -> throw new IllegalArgumentException("--auto applies drop or freeze");
        };
        SensitivityProbe.Result result = SensitivityProbe.run(experiment, List.of(m), mode == Mode.DROP,
                tolerance, null, null);
        return pick(mode, result, tolerance, L);
    }

    /** The choice from measured results (separate from the measuring, so it can be tested on made-up numbers). */
    static AutoChoice pick(Mode mode, SensitivityProbe.Result result, QualityTolerance tolerance, int L) {
        Recommendation contiguous = result.recommendations().get(0);
        NonContiguousDrop nc = result.nonContiguous();
        boolean useList = mode == Mode.DROP && nc != null && nc.evidence() != null
                && nc.layers().size() > contiguous.layers().size();
        LayerSelection selection;
        SensitivityRow evidence;
        String how;
        if (useList) {
            selection = LayerSelection.fromList(String.join(",", nc.layers().stream().map(String::valueOf).toList()), L);
            evidence = nc.evidence();
            how = "non-contiguous drop of layers " + nc.layers() + " (greedy, ranked by " + nc.rankedBy() + "; contiguous k = "
                    + contiguous.k() + " would change " + contiguous.layers().size() + " layers)";
        } else {
            selection = LayerSelection.fromLayer(contiguous.k(), L);
            evidence = contiguous.evidence();
            how = "k = " + contiguous.k() + ", the smallest k within tolerance" + (contiguous.k() == L ? " (changes nothing)" : "");
        }
        String quality = evidence == null ? "not measured" : String.format(Locale.ROOT,
                "top-1 agreement %.4f [%.4f, %.4f], mean KL %.4f [%.4f, %.4f], perplexity x%.4f (%.4f vs %.4f)",
                evidence.top1(), evidence.quality().top1Agreement().low(), evidence.quality().top1Agreement().high(),
                evidence.kl(), evidence.quality().meanKl().low(), evidence.quality().meanKl().high(), evidence.perplexityRatio(),
                evidence.quality().variantPerplexity().value(), evidence.quality().baselinePerplexity().value());
        List<String> notes = new ArrayList<>();
        notes.add("auto (tolerance " + tolerance + "): " + how);
        notes.add("measured on " + (evidence == null ? 0 : evidence.quality().documents()) + " documents: " + quality);
        if (contiguous.note() != null) {
            notes.add((useList ? "contiguous k: " : "") + contiguous.note());
        }
        Map<String, String> meta = new LinkedHashMap<>();
        meta.put("auto_tolerance", tolerance.toString());
        meta.put("auto_recommendation", how);
        meta.put("auto_layers", String.join(",", selection.layers().stream().map(String::valueOf).toList()));
        if (evidence != null) {
            meta.put("auto_top1_agreement", Double.toString(evidence.top1()));
            meta.put("auto_mean_kl", Double.toString(evidence.kl()));
            meta.put("auto_perplexity_ratio", Double.toString(evidence.perplexityRatio()));
        }
        return new AutoChoice(mode, selection, evidence, notes, meta);
    }
}
