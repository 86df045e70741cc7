package org.attnskip.eval;

import org.attnskip.runtime.Generator;
import org.attnskip.runtime.Tokenizer;

import java.util.Arrays;
import java.util.List;

/**
 * Greedy-generation agreement: both models continue the opening tokens of each document with
 * greedy decoding through the normal generation loop (KV cache and all), and the continuations
 * are compared token by token.
 */
final class GreedyAgreement {
    private final Tokenizer tokenizer;
    private final int promptTokens;
    private final int newTokens;
    private final Bootstrap bootstrap;

    GreedyAgreement(Tokenizer tokenizer, int promptTokens, int newTokens, Bootstrap bootstrap) {
        this.tokenizer = tokenizer;
        this.promptTokens = promptTokens;
        this.newTokens = newTokens;
        this.bootstrap = bootstrap;
    }

    /** Each document's greedy continuation by {@code model}; a sweep makes the baseline's once for all points. */
    int[][] continuations(Generator model, List<String> documents) {
        int[][] out = new int[documents.size()][];
        for (int d = 0; d < documents.size(); d++) {
            int[] ids = tokenizer.encode(documents.get(d));
            int[] prompt = Arrays.copyOf(ids, Math.min(ids.length, promptTokens));
            out[d] = model.generate(prompt, Generator.Options.greedy(prompt.length - 1 + newTokens), piece -> { })
                    .generatedIds();
        }
        return out;
    }

    /** The variant's continuations against the baseline's, made earlier from the same documents. */
    GenerationAgreement compare(int[][] baseline, Generator variant, List<String> documents) {
        int[][] variantIds = continuations(variant, documents);
        double[] prefix = new double[documents.size()];
        double[] rouge = new double[documents.size()];
        for (int d = 0; d < documents.size(); d++) {
            prefix[d] = commonPrefix(baseline[d], variantIds[d]);
            rouge[d] = rougeL(baseline[d], variantIds[d]);
        }
        return new GenerationAgreement(documents.size(), promptTokens, newTokens, bootstrap.mean(prefix), bootstrap.mean(rouge));
    }

    static int commonPrefix(int[] a, int[] b) {
        int n = 0;
        while (n < a.length && n < b.length && a[n] == b[n]) {
            n++;
        }
        return n;
    }

    /** ROUGE-L F1: 2PR / (P + R) with P = LCS / |b|, R = LCS / |a|; 1 when both are empty. */
    static double rougeL(int[] reference, int[] candidate) {
        if (reference.length == 0 && candidate.length == 0) {
            return 1;
        }
        if (reference.length == 0 || candidate.length == 0) {
            return 0;
        }
        int[][] lcs = new int[reference.length + 1][candidate.length + 1];
        for (int i = 1; i <= reference.length; i++) {
            for (int j = 1; j <= candidate.length; j++) {
                lcs[i][j] = reference[i - 1] == candidate[j - 1] ? lcs[i - 1][j - 1] + 1 : Math.max(lcs[i - 1][j], lcs[i][j - 1]);
            }
        }
        double common = lcs[reference.length][candidate.length];
        if (common == 0) {
            return 0;
        }
        double precision = common / candidate.length;
        double recall = common / reference.length;
        return 2 * precision * recall / (precision + recall);
    }
}
