package org.attnskip.eval;

import org.apache.commons.math3.random.RandomGenerator;
import org.apache.commons.math3.random.Well19937c;
import org.apache.commons.math3.stat.descriptive.rank.Percentile;

/**
 * Percentile bootstrap over items (documents, task items): resample the items with replacement,
 * recompute the statistic, and take the 2.5th and 97.5th percentiles. Seeded, so the same data and
 * seed give the same interval. Paired statistics resample the same items for both models.
 */
public final class Bootstrap {
    /** A statistic of a resample, given as item indices (repeats allowed). */
    @FunctionalInterface
    public interface Statistic {
        double of(int[] items);
    }

    public static final int DEFAULT_RESAMPLES = 1000;

    private final int resamples;
    private final long seed;

    public Bootstrap(int resamples, long seed) {
        if (resamples < 1) {
            throw new IllegalArgumentException("resamples must be positive");
        }
        this.resamples = resamples;
        this.seed = seed;
    }

    /** The statistic on all n items with its 95% interval. */
    public Estimate estimate(int n, Statistic statistic) {
        int[] all = new int[n];
        for (int i = 0; i < n; i++) {
            all[i] = i;
        }
        double point = statistic.of(all);
        if (n < 2) {
            return new Estimate(point, point, point);
        }
        RandomGenerator random = new Well19937c(seed);
        double[] values = new double[resamples];
        int[] sample = new int[n];
        for (int r = 0; r < resamples; r++) {
            for (int i = 0; i < n; i++) {
                sample[i] = random.nextInt(n);
            }
            values[r] = statistic.of(sample);
        }
        Percentile percentile = new Percentile();
        percentile.setData(values);
        return new Estimate(point, percentile.evaluate(2.5), percentile.evaluate(97.5));
    }

    /** Mean of per-item values. */
    public Estimate mean(double[] values) {
        return estimate(values.length, items -> meanOf(values, items));
    }

    /** Mean of per-item differences b - a (same items in both). */
    public Estimate meanDifference(double[] a, double[] b) {
        double[] d = new double[a.length];
        for (int i = 0; i < a.length; i++) {
            d[i] = b[i] - a[i];
        }
        return mean(d);
    }

    /** sum(numerator) / sum(denominator) over items, e.g. agreeing positions / positions. */
    public Estimate ratioOfSums(double[] numerator, double[] denominator) {
        return estimate(numerator.length, items -> sumOf(numerator, items) / sumOf(denominator, items));
    }

    static double meanOf(double[] values, int[] items) {
        return sumOf(values, items) / items.length;
    }

    static double sumOf(double[] values, int[] items) {
        double s = 0;
        for (int i : items) {
            s += values[i];
        }
        return s;
    }
}
