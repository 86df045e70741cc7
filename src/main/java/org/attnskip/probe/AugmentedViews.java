package org.attnskip.probe;

import java.util.List;

/**
 * The two augmented copies of each prompt that the invariance metrics compare, for each
 * augmentation kind. Every copy has its own seed derived from the run's seed, so a run is
 * reproducible and no two copies (across prompts, copies or kinds) share a random stream.
 */
public record AugmentedViews(List<Augmentations.Kind> kinds, double rate, long seed) {
    /** The default: every kind the issue lists, each reported on its own. */
    public static final List<Augmentations.Kind> ALL_KINDS = List.of(Augmentations.Kind.values());

    /** Kinds are 2^32 seeds apart, so they never collide below 2^31 prompts. */
    private static final long KIND_STRIDE = 1L << 32;

    public AugmentedViews {
        if (kinds.isEmpty()) {
            throw new IllegalArgumentException("at least one augmentation kind is needed");
        }
        if (kinds.stream().distinct().count() != kinds.size()) {
            throw new IllegalArgumentException("augmentation kinds repeat: " + kinds);
        }
        kinds = List.copyOf(kinds);
        if (!(rate >= 0 && rate <= 1)) {
            throw new IllegalArgumentException("augmentation rate " + rate + " is outside [0, 1]");
        }
    }

    /**
     * Copy 0 or 1 of prompt number {@code prompt}. The seed is seed + 2 prompt + copy for word
     * dropout (the seeds earlier single-kind runs used), shifted by {@link #KIND_STRIDE} per kind.
     */
    public String copy(Augmentations.Kind kind, int prompt, int copy, String text) {
        if (copy != 0 && copy != 1) {
            throw new IllegalArgumentException("copy " + copy + " is not 0 or 1");
        }
        long s = seed + KIND_STRIDE * kind.ordinal() + 2L * prompt + copy;
        return Augmentations.apply(kind, text, rate, s);
    }

    /** The report's name of a kind, e.g. word_dropout. */
    public static String key(Augmentations.Kind kind) {
        return kind.name().toLowerCase(java.util.Locale.ROOT);
    }
}
