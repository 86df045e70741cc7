package org.attnskip.rewrite;

import org.attnskip.reference.AffineMap;
import org.attnskip.reference.Noise;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * What to rewrite: one {@link Mode} with the options its pass takes, plus what the caller adds to
 * the change report and the model's metadata. {@link #pass()} builds the pass; {@link Rewrite}
 * runs it. Build one with the factories; the fields another mode does not use are null.
 *
 * @param contextLength drop: the context at which attention FLOPs saved are reported
 * @param compensation  calibrated drop: the fitted map of each dropped layer (null for plain drop)
 * @param metadata      extra attnskip.* metadata entries (a calibration's, optimize --auto's)
 * @param notes         extra lines for the change report
 */
public record RewriteRequest(Mode mode, int contextLength, FreezeKv freezeKv, FreezeForm freezeForm, Noise noise,
                             long noiseSeed, Map<Integer, AffineMap> compensation, Map<String, String> metadata,
                             List<String> notes) {
    /** The context length attention FLOPs saved are reported at unless a user names one. */
    public static final int DEFAULT_CONTEXT = 1024;

    public RewriteRequest {
        metadata = Collections.unmodifiableMap(new LinkedHashMap<>(metadata)); // in the order given
        notes = List.copyOf(notes);
    }

    public static RewriteRequest drop(int contextLength) {
        return new RewriteRequest(Mode.DROP, contextLength, null, null, null, 0, null, Map.of(), List.of());
    }

    /** Calibrated drop: the maps take the attention branch's place; metadata records how they were fitted. */
    public static RewriteRequest compensatedDrop(Map<Integer, AffineMap> maps, Map<String, String> metadata, int contextLength) {
        return new RewriteRequest(Mode.DROP, contextLength, null, null, null, 0, maps, metadata, List.of());
    }

    /**
     * Calibrated drop whose maps the caller fits for each layer selection it measures (the probe's
     * sweep over k); {@link #fitted} gives the request to run. Its map is empty until then.
     */
    public static RewriteRequest compensatedDropToFit(int contextLength) {
        return compensatedDrop(Map.of(), Map.of(), contextLength);
    }

    /** A calibrated drop's request with the maps fitted for one selection. */
    public RewriteRequest fitted(Map<Integer, AffineMap> maps, Map<String, String> fitMetadata) {
        if (compensation == null) {
            throw new IllegalStateException(label() + " takes no maps");
        }
        return compensatedDrop(maps, fitMetadata, contextLength).recording(notes, metadata);
    }

    /** Calibrated drop, fitted or still to fit. */
    public boolean compensated() {
        return compensation != null;
    }

    public static RewriteRequest freeze(FreezeKv flavour, FreezeForm form) {
        return new RewriteRequest(Mode.FREEZE, 0, flavour, form, null, 0, null, Map.of(), List.of());
    }

    /** The seed is recorded in the model for whoever feeds the noise ({@code NoiseDraw}). */
    public static RewriteRequest random(Noise noise, long seed) {
        return new RewriteRequest(Mode.RANDOM, 0, null, null, noise, seed, null, Map.of(), List.of());
    }

    /** The same request with more lines for the change report and more metadata entries. */
    public RewriteRequest recording(List<String> moreNotes, Map<String, String> moreMetadata) {
        List<String> n = new ArrayList<>(notes);
        n.addAll(moreNotes);
        Map<String, String> m = new LinkedHashMap<>(metadata);
        m.putAll(moreMetadata);
        return new RewriteRequest(mode, contextLength, freezeKv, freezeForm, noise, noiseSeed, compensation,
                m, n);
    }

    /** The pass that applies this mode with these options. */
    public RewritePass pass() {
        return switch (mode) {
            case DROP -> compensation == null ? new DropAttentionPass(contextLength)
                    : new CompensatedDropPass(compensation, contextLength);
            case FREEZE -> freezeKv.pass(freezeForm);
            case RANDOM -> new RandomNoisePass(noise);
        };
    }

    /** The attnskip.* metadata entries besides the change report's: the mode's options, then the extra ones. */
    public Map<String, String> modelMetadata() {
        Map<String, String> m = new LinkedHashMap<>();
        if (mode == Mode.FREEZE) {
            m.put("freeze_kv", freezeKv.label);
        } else if (mode == Mode.RANDOM) {
            m.put("noise", noise.toString());
            m.put("seed", Long.toString(noiseSeed));
        }
        m.putAll(metadata);
        return m;
    }

    /** How the probe's reports name it: drop, drop-compensated, freeze (paper flavour), freeze-single-input, random-gaussian... */
    public String label() {
        return switch (mode) {
            case DROP -> compensation == null ? "drop" : "drop-compensated";
            case FREEZE -> freezeKv == FreezeKv.PAPER ? "freeze" : "freeze-" + freezeKv.label;
            case RANDOM -> "random-" + noise;
        };
    }
}
