package org.attnskip.eval;

/** A point estimate with its 95% bootstrap confidence interval. */
public record Estimate(double value, double low, double high) {
    public boolean contains(double x) {
        return low <= x && x <= high;
    }
}
