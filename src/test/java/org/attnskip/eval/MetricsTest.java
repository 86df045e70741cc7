package org.attnskip.eval;

import org.attnskip.runtime.LogProbs;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Perplexity, agreement, KL and bootstrap intervals against values worked out by hand. */
class MetricsTest {

    /** Two positions over a vocabulary of 2: p = (1/2, 1/2), then (3/4, 1/4). */
    private static final float[][] LOGITS = {{0f, 0f}, {(float) Math.log(3), 0f}};
    /** True next tokens 0 then 1: probabilities 1/2 and 1/4. */
    private static final int[] NEXT = {0, 1};

    private static double[][] logProbs(float[][] logits) {
        double[][] rows = new double[logits.length][];
        for (int i = 0; i < logits.length; i++) {
            rows[i] = LogProbs.logSoftmax(logits[i]);
        }
        return rows;
    }

    @Test
    void perplexityOfATinyExampleIsWorkedOutByHand() {
        TextScores s = TextScores.of(1);
        s.add(0, logProbs(LOGITS), logProbs(LOGITS), NEXT);
        // exp(-(ln 1/2 + ln 1/4) / 2) = sqrt(8)
        TextQuality q = s.summarise(new Bootstrap(50, 1));
        assertEquals(Math.sqrt(8), q.baselinePerplexity().value(), 1e-6);
        assertEquals(2, q.positions());
    }

    @Test
    void klAndAgreementOfTwoDifferentDistributions() {
        double[][] p = logProbs(new float[][] {{0f, 0f}});
        double[][] q = logProbs(new float[][] {{(float) Math.log(3), 0f}});
        // KL((1/2,1/2) || (3/4,1/4)) = 1/2 ln(2/3) + 1/2 ln 2 = 1/2 ln(4/3)
        assertEquals(0.5 * Math.log(4.0 / 3), LogProbs.kl(p[0], q[0]), 1e-7);
        TextScores s = TextScores.of(1);
        s.add(0, p, q, new int[] {1});
        assertEquals(1.0, s.summarise(new Bootstrap(10, 1)).top1Agreement().value(), 0); // argmax 0 in both (tie -> first)
        // perplexities 2 and 4: the variant gives token 1 probability 1/4
        assertEquals(2.0, s.summarise(new Bootstrap(10, 1)).perplexityDifference().value() + 0.0, 1e-6);
    }

    @Test
    void anIdenticalVariantAgreesEverywhereWithNoDivergence() {
        java.util.SplittableRandom r = new java.util.SplittableRandom(3);
        int docs = 6;
        TextScores s = TextScores.of(docs);
        for (int d = 0; d < docs; d++) {
            float[][] logits = new float[5][11];
            for (float[] row : logits) {
                for (int j = 0; j < row.length; j++) {
                    row[j] = (float) r.nextGaussian();
                }
            }
            int[] next = r.ints(5, 0, 11).toArray();
            s.add(d, logProbs(logits), logProbs(logits), next);
        }
        TextQuality q = s.summarise(new Bootstrap(200, 7));
        assertEquals(1.0, q.top1Agreement().value());
        assertEquals(1.0, q.top1Agreement().low());
        assertEquals(0.0, q.meanKl().value(), 1e-12);
        assertEquals(0.0, q.perplexityDifference().value());
        assertEquals(0.0, q.perplexityDifference().high());
        assertEquals(q.baselinePerplexity(), q.variantPerplexity());
    }

    @Test
    void bootstrapIntervalContainsThePointEstimateAndIsReproducible() {
        java.util.SplittableRandom r = new java.util.SplittableRandom(11);
        double[] values = r.doubles(40).toArray();
        double mean = java.util.Arrays.stream(values).average().orElseThrow();
        Estimate a = new Bootstrap(1000, 5).mean(values);
        Estimate b = new Bootstrap(1000, 5).mean(values);
        Estimate c = new Bootstrap(1000, 6).mean(values);
        assertEquals(mean, a.value(), 1e-12);
        assertTrue(a.contains(mean), a::toString);
        assertTrue(a.low() < a.high());
        assertEquals(a, b);
        assertNotEquals(a, c);
        // standard error of a mean of 40 uniforms is about sqrt(1/12/40) = 0.046: the interval spans about +-0.09
        assertTrue(a.high() - a.low() > 0.1 && a.high() - a.low() < 0.26, a::toString);
    }

    @Test
    void paretoFrontierDropsDominatedPointsAndRecommendsTheFastestWithinTolerance() {
        SweepPoint slowGood = point(1.0, 1.0, 1.00);
        SweepPoint fastOk = point(0.6, 0.7, 1.03);
        SweepPoint dominated = point(0.8, 0.9, 1.10);
        SweepPoint fastBad = point(0.0, 0.3, 5.0);
        var all = java.util.List.of(slowGood, fastOk, dominated, fastBad);
        var front = Pareto.frontier(all, p -> p.layers().get(0), p -> p.layers().get(1));
        assertEquals(java.util.List.of(fastBad, fastOk, slowGood), front);
        assertEquals(fastOk, Pareto.recommend(front, p -> p.layers().get(0), p -> p.layers().get(1), 1050));
    }

    /** A point whose "layers" carry (cost, loss) scaled by 1000 so the test needs no latency or text. */
    private static SweepPoint point(double threshold, double cost, double loss) {
        return new SweepPoint(threshold, java.util.List.of((int) Math.round(cost * 1000), (int) Math.round(loss * 1000)),
                null, java.util.List.of(), null, null);
    }
}
