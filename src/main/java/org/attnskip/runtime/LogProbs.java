package org.attnskip.runtime;

/** Log-softmax, argmax and KL divergence of one position's logits, in double precision. */
public final class LogProbs {
    private LogProbs() {
    }

    /** log softmax(logits), computed stably by subtracting the maximum. */
    public static double[] logSoftmax(float[] logits) {
        double[] widened = new double[logits.length];
        for (int i = 0; i < logits.length; i++) {
            widened[i] = logits[i];
        }
        return logSoftmaxInPlace(widened);
    }

    /** The same for logits already in double precision, overwritten with their log-probabilities. */
    public static double[] logSoftmaxInPlace(double[] logits) {
        double max = Double.NEGATIVE_INFINITY;
        for (double v : logits) {
            max = Math.max(max, v);
        }
        double sum = 0;
        for (double v : logits) {
            sum += Math.exp(v - max);
        }
        double logZ = max + Math.log(sum);
        for (int i = 0; i < logits.length; i++) {
            logits[i] -= logZ;
        }
        return logits;
    }

    /** Index of the largest value; the first one on ties. */
    public static int argmax(double[] values) {
        int best = 0;
        for (int i = 1; i < values.length; i++) {
            if (values[i] > values[best]) {
                best = i;
            }
        }
        return best;
    }

    /** KL(p || q) in nats from log-probabilities: sum p * (log p - log q). */
    public static double kl(double[] logP, double[] logQ) {
        double sum = 0;
        for (int i = 0; i < logP.length; i++) {
            double p = Math.exp(logP[i]);
            if (p > 0) {
                sum += p * (logP[i] - logQ[i]);
            }
        }
        return Math.max(0, sum); // rounding can make an exact zero slightly negative
    }
}
