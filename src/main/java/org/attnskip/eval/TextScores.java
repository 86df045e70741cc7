package org.attnskip.eval;

import org.attnskip.runtime.LogProbs;

/**
 * Per-document sums over the predicted positions of each document: negative log-likelihood of the
 * true next token under each model, top-1 agreement and KL(baseline || variant).
 */
public record TextScores(double[] baselineNll, double[] variantNll, double[] positions, double[] agreements, double[] klSums) {

    public static TextScores of(int documents) {
        return new TextScores(new double[documents], new double[documents], new double[documents],
                new double[documents], new double[documents]);
    }

    /** Adds the positions of document d, given both models' log-probabilities and the true next tokens. */
    public void add(int d, double[][] baseline, double[][] variant, int[] nextTokens) {
        for (int p = 0; p < nextTokens.length; p++) {
            baselineNll[d] -= baseline[p][nextTokens[p]];
            variantNll[d] -= variant[p][nextTokens[p]];
            agreements[d] += LogProbs.argmax(baseline[p]) == LogProbs.argmax(variant[p]) ? 1 : 0;
            klSums[d] += LogProbs.kl(baseline[p], variant[p]);
            positions[d]++;
        }
    }

    /** The summary with bootstrap intervals over documents. */
    public TextQuality summarise(Bootstrap bootstrap) {
        Bootstrap.Statistic pplBase = items -> Math.exp(Bootstrap.sumOf(baselineNll, items) / Bootstrap.sumOf(positions, items));
        Bootstrap.Statistic pplVar = items -> Math.exp(Bootstrap.sumOf(variantNll, items) / Bootstrap.sumOf(positions, items));
        return new TextQuality(positions.length, (long) Bootstrap.sumOf(positions, all()),
                bootstrap.estimate(positions.length, pplBase),
                bootstrap.estimate(positions.length, pplVar),
                bootstrap.estimate(positions.length, items -> pplVar.of(items) - pplBase.of(items)),
                bootstrap.ratioOfSums(agreements, positions),
                bootstrap.ratioOfSums(klSums, positions));
    }

    private int[] all() {
        int[] a = new int[positions.length];
        for (int i = 0; i < a.length; i++) {
            a[i] = i;
        }
        return a;
    }
}
