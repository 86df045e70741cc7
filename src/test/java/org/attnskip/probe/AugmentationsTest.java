package org.attnskip.probe;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class AugmentationsTest {
    private static final String TEXT = "Once upon a time there was a little girl named Lily who loved to play outside in the sun";

    @Test
    void sameSeedSameResultOtherSeedOtherResult() {
        for (Augmentations.Kind kind : Augmentations.Kind.values()) {
            String a = Augmentations.apply(kind, TEXT, 0.3, 42);
            assertEquals(a, Augmentations.apply(kind, TEXT, 0.3, 42), kind.name());
            assertNotEquals(a, TEXT, kind.name());
            assertNotEquals(a, Augmentations.apply(kind, TEXT, 0.3, 43), kind.name());
        }
    }

    @Test
    void rateZeroChangesNothingAndWhitespaceIsNormalised() {
        for (Augmentations.Kind kind : Augmentations.Kind.values()) {
            assertEquals("a b c", Augmentations.apply(kind, "  a \t b\nc ", 0.0, 1), kind.name());
        }
    }

    @Test
    void wordDropoutKeepsAnOrderedSubsetAndAtLeastOneWord() {
        List<String> words = Augmentations.words(TEXT);
        List<String> kept = Augmentations.words(Augmentations.wordDropout(TEXT, 0.5, 7));
        assertTrue(kept.size() < words.size() && !kept.isEmpty());
        int at = 0;
        for (String w : kept) {
            at = words.subList(at, words.size()).indexOf(w) + at;
            assertTrue(at >= 0 && words.get(at).equals(w), "kept words are in order: " + kept);
            at++;
        }
        assertEquals(1, Augmentations.words(Augmentations.wordDropout(TEXT, 1.0, 7)).size());
    }

    @Test
    void adjacentSwapPermutesNeighboursOnly() {
        List<String> words = Augmentations.words(TEXT);
        List<String> swapped = Augmentations.words(Augmentations.adjacentSwap(TEXT, 0.5, 3));
        List<String> a = new ArrayList<>(words);
        List<String> b = new ArrayList<>(swapped);
        Collections.sort(a);
        Collections.sort(b);
        assertEquals(a, b, "same multiset of words");
        for (int i = 0; i < words.size(); i++) {
            boolean stayed = swapped.get(i).equals(words.get(i));
            boolean fromLeft = i > 0 && swapped.get(i).equals(words.get(i - 1));
            boolean fromRight = i + 1 < words.size() && swapped.get(i).equals(words.get(i + 1));
            assertTrue(stayed || fromLeft || fromRight, "word " + i + " moved at most one place");
        }
        // Rate 1 swaps the pairs (0,1), (2,3), ...
        assertEquals("b a d c e", Augmentations.adjacentSwap("a b c d e", 1.0, 0));
    }

    @Test
    void characterNoiseReplacesLettersOnly() {
        String noisy = Augmentations.characterNoise(TEXT, 0.2, 11);
        assertEquals(TEXT.length(), noisy.length());
        int changed = 0;
        for (int i = 0; i < TEXT.length(); i++) {
            if (TEXT.charAt(i) != noisy.charAt(i)) {
                changed++;
                assertTrue(Character.isLetter(TEXT.charAt(i)) && Character.isLowerCase(noisy.charAt(i)));
            }
        }
        assertTrue(changed > 0 && changed < TEXT.length() / 2, "changed " + changed);
        String all = Augmentations.characterNoise("ab, cd!", 1.0, 5);
        assertEquals(',', all.charAt(2));
        assertEquals('!', all.charAt(6));
        assertNotEquals('a', all.charAt(0));
    }
}
