package org.attnskip.probe;

import org.junit.jupiter.api.Test;

import java.util.HashSet;
import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

class AugmentedViewsTest {
    private static final String TEXT = "Once upon a time there was a little girl named Lily who loved to play outside in the sun";

    @Test
    void sameSeedSameCopiesForEveryKind() {
        AugmentedViews one = new AugmentedViews(AugmentedViews.ALL_KINDS, 0.2, 7);
        AugmentedViews again = new AugmentedViews(AugmentedViews.ALL_KINDS, 0.2, 7);
        AugmentedViews other = new AugmentedViews(AugmentedViews.ALL_KINDS, 0.2, 8);
        for (Augmentations.Kind kind : AugmentedViews.ALL_KINDS) {
            for (int prompt = 0; prompt < 3; prompt++) {
                for (int copy = 0; copy < 2; copy++) {
                    String text = one.copy(kind, prompt, copy, TEXT);
                    assertEquals(text, again.copy(kind, prompt, copy, TEXT), kind + " prompt " + prompt + " copy " + copy);
                    assertNotEquals(TEXT, text, kind + " perturbs");
                }
            }
            assertNotEquals(one.copy(kind, 0, 0, TEXT), other.copy(kind, 0, 0, TEXT), kind + ": another seed, another copy");
        }
    }

    @Test
    void theTwoCopiesAndThePromptsHaveTheirOwnSeeds() {
        AugmentedViews views = new AugmentedViews(AugmentedViews.ALL_KINDS, 0.2, 7);
        for (Augmentations.Kind kind : AugmentedViews.ALL_KINDS) {
            Set<String> seen = new HashSet<>();
            for (int prompt = 0; prompt < 3; prompt++) {
                seen.add(views.copy(kind, prompt, 0, TEXT));
                seen.add(views.copy(kind, prompt, 1, TEXT));
            }
            assertEquals(6, seen.size(), kind + ": six distinct copies of one text");
        }
    }

    @Test
    void wordDropoutKeepsTheSeedsOfSingleKindRuns() {
        AugmentedViews views = new AugmentedViews(List.of(Augmentations.Kind.WORD_DROPOUT), 0.2, 7);
        assertEquals(Augmentations.wordDropout(TEXT, 0.2, 7 + 2 * 4 + 1), views.copy(Augmentations.Kind.WORD_DROPOUT, 4, 1, TEXT));
    }

    @Test
    void rejectsNoKindsRepeatedKindsAndBadRates() {
        assertThrows(IllegalArgumentException.class, () -> new AugmentedViews(List.of(), 0.1, 1));
        assertThrows(IllegalArgumentException.class, () -> new AugmentedViews(
                List.of(Augmentations.Kind.ADJACENT_SWAP, Augmentations.Kind.ADJACENT_SWAP), 0.1, 1));
        assertThrows(IllegalArgumentException.class, () -> new AugmentedViews(AugmentedViews.ALL_KINDS, 1.5, 1));
        assertEquals(List.of("word_dropout", "adjacent_swap", "character_noise"),
                AugmentedViews.ALL_KINDS.stream().map(AugmentedViews::key).toList());
    }
}
