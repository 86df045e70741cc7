package org.attnskip.probe;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

/**
 * Seeded text perturbations for the augmentation-invariance metrics: the same text, rate and
 * seed always give the same result. Words are maximal runs of non-whitespace; the perturbed text
 * joins them with single spaces.
 */
public final class Augmentations {
    private static final String LETTERS = "abcdefghijklmnopqrstuvwxyz";

    /** A perturbation with its rate (a probability per word, pair or character). */
    public enum Kind {
        WORD_DROPOUT, ADJACENT_SWAP, CHARACTER_NOISE
    }

    private Augmentations() {
    }

    public static String apply(Kind kind, String text, double rate, long seed) {
        return switch (kind) {
            case WORD_DROPOUT -> wordDropout(text, rate, seed);
            case ADJACENT_SWAP -> adjacentSwap(text, rate, seed);
            case CHARACTER_NOISE -> characterNoise(text, rate, seed);
        };
    }

    /** Drops each word with probability rate; one word is kept when all would go. */
    public static String wordDropout(String text, double rate, long seed) {
        checkRate(rate);
        List<String> words = words(text);
        SplittableRandom random = new SplittableRandom(seed);
        List<String> kept = new ArrayList<>();
        for (String w : words) {
            if (random.nextDouble() >= rate) {
                kept.add(w);
            }
        }
        if (kept.isEmpty() && !words.isEmpty()) {
            kept.add(words.get(random.nextInt(words.size())));
        }
        return String.join(" ", kept);
    }

    /** Walks the words left to right and swaps word i with word i+1 with probability rate; a swapped word is not swapped again. */
    public static String adjacentSwap(String text, double rate, long seed) {
        checkRate(rate);
        List<String> words = words(text);
        SplittableRandom random = new SplittableRandom(seed);
        for (int i = 0; i + 1 < words.size(); i++) {
            if (random.nextDouble() < rate) {
                String w = words.get(i);
                words.set(i, words.get(i + 1));
                words.set(i + 1, w);
                i++;
            }
        }
        return String.join(" ", words);
    }

    /** Replaces each letter with probability rate by a different random lowercase letter; other characters stay. */
    public static String characterNoise(String text, double rate, long seed) {
        checkRate(rate);
        SplittableRandom random = new SplittableRandom(seed);
        StringBuilder out = new StringBuilder(String.join(" ", words(text)));
        for (int i = 0; i < out.length(); i++) {
            char c = out.charAt(i);
            if (Character.isLetter(c) && random.nextDouble() < rate) {
                char replacement;
                do {
                    replacement = LETTERS.charAt(random.nextInt(LETTERS.length()));
                } while (replacement == Character.toLowerCase(c));
                out.setCharAt(i, replacement);
            }
        }
        return out.toString();
    }

    static List<String> words(String text) {
        String trimmed = text.strip();
        return trimmed.isEmpty() ? new ArrayList<>() : new ArrayList<>(Arrays.asList(trimmed.split("\\s+")));
    }

    private static void checkRate(double rate) {
        if (!(rate >= 0 && rate <= 1)) {
            throw new IllegalArgumentException("augmentation rate " + rate + " is outside [0, 1]");
        }
    }
}
