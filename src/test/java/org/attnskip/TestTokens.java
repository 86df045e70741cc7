package org.attnskip;

import java.util.Arrays;
import java.util.SplittableRandom;

/** Token sequences and the small id rows a decoder graph takes, shared by the tests that feed graphs directly. */
public final class TestTokens {
    private TestTokens() {
    }

    /** BOS (1) and then n-1 seeded ids from [3, vocab): the same tokens for the same seed. */
    public static int[] tokens(int vocab, int n, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        int[] t = new int[n];
        t[0] = 1;
        for (int i = 1; i < n; i++) {
            t[i] = r.nextInt(3, vocab);
        }
        return t;
    }

    /** An attention mask of n ones. */
    public static long[] ones(int n) {
        long[] o = new long[n];
        Arrays.fill(o, 1);
        return o;
    }

    /** Token ids widened to the int64 a graph's input_ids take. */
    public static long[] longs(int[] ids) {
        return Arrays.stream(ids).asLongStream().toArray();
    }

    /** Positions 0 .. n-1. */
    public static long[] range(int n) {
        long[] o = new long[n];
        for (int i = 0; i < n; i++) {
            o[i] = i;
        }
        return o;
    }
}
