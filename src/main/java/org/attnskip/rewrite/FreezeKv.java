package org.attnskip.rewrite;

import org.attnskip.layout.AttentionKind;
import org.attnskip.layout.DecoderLayout;
import org.attnskip.onnx.BadInputException;
import org.attnskip.onnx.Graph;

import java.util.Locale;

/**
 * The two flavours of freeze (MANIPULATIONS.md, "Two flavours of deployable freeze"), each in its
 * evaluation form (every position's logits, as if it were the last token) and its deployable form
 * (prefill runs layers >= k for the last position only).
 */
public enum FreezeKv {
    /** The last token attends to its own normal K/V; its cache entry in layers >= k comes from h_k. */
    PAPER("paper"),
    /** Every position's K/V in layers >= k, the current token's included, come from its h_k. */
    SINGLE_INPUT("single-input");

    /** What optimize, sweep and probe use unless told otherwise (README, "Two flavours of freeze"). */
    public static final FreezeKv DEFAULT = SINGLE_INPUT;

    public final String label;

    FreezeKv(String label) {
        this.label = label;
    }

    public static FreezeKv parse(String text) {
        String t = text == null ? "" : text.trim().toLowerCase(Locale.ROOT);
        for (FreezeKv f : values()) {
            if (f.label.equals(t)) {
                return f;
            }
        }
        throw new BadInputException("--freeze-kv " + text + ": expected paper or single-input");
    }

    /** The pass that freezes with this flavour in the given form. */
    public RewritePass pass(FreezeForm form) {
        return (g, layout, selection) -> freeze(g, layout, selection, form == FreezeForm.EVALUATION);
    }

    /** Rewrites g; {@code allPositions} selects the evaluation form, otherwise the deployable one. */
    private ChangeReport freeze(Graph g, DecoderLayout layout, LayerSelection selection, boolean allPositions) {
        int k = selection.frozenFrom();
        if (StaticCacheFreezePass.handles(layout, k)) {
            if (!allPositions) {
                return StaticCacheFreezePass.apply(g, layout, selection, this);
            }
            if (this == SINGLE_INPUT) {
                return StaticCacheFreezePass.applySingleInputEverywhere(g, layout, selection);
            }
            throw new BadInputException("freeze: on a static-cache graph (TensorScatter into fixed buffers) the paper"
                    + " flavour has only the deployable form; drop --freeze-logits all, or use --freeze-kv single-input");
        }
        if (GqaFreezePass.handles(layout, k)) {
            return GqaFreezePass.apply(g, layout, selection, this, allPositions);
        }
        for (int i = k; i < layout.numLayers(); i++) {
            AttentionKind kind = layout.layer(i).attention().kind();
            if (kind == AttentionKind.FUSED_ATTENTION) {
                throw new BadInputException("freeze: layer " + i + " uses " + kind.label
                        + ", which projects Q, K and V inside the op; its K/V cannot be computed from layer " + k + "'s stream");
            }
            if (kind != AttentionKind.UNFUSED && kind != AttentionKind.MULTI_HEAD_ATTENTION) {
                throw new BadInputException("freeze: layer " + i + " uses " + kind.label + "; freeze is implemented for"
                        + " unfused attention, com.microsoft::MultiHeadAttention and com.microsoft::GroupQueryAttention"
                        + " (in every layer from " + k + " on)");
            }
        }
        if (!allPositions && FreezeCachedAttentionPass.handles(layout, k)) {
            return new FreezeCachedAttentionPass(this).apply(g, layout, selection);
        }
        return switch (this) {
            case PAPER -> (allPositions ? new PaperFreezeEvaluationPass() : new PaperFreezeDeployablePass()).apply(g, layout, selection);
            case SINGLE_INPUT -> new SingleInputFreezePass(allPositions ? FreezeForm.EVALUATION : FreezeForm.DEPLOYABLE)
                    .apply(g, layout, selection);
        };
    }

    @Override
    public String toString() {
        return label;
    }
}
