package org.attnskip.eval;

import org.attnskip.runtime.Tokenizer;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/** Runs the same documents and task items through a baseline and a variant and compares them. */
public final class QualityEvaluator {
    private final Tokenizer tokenizer;
    private final int maxTokens;
    private final Bootstrap bootstrap;
    private final boolean quiet;

    /**
     * @param maxTokens documents are cut to this many tokens (BOS included); a random variant is
     *                  scored with one pass per prefix, so its cost grows with the square of it
     */
    public QualityEvaluator(Tokenizer tokenizer, int maxTokens, Bootstrap bootstrap, boolean quiet) {
        this.tokenizer = tokenizer;
        this.maxTokens = maxTokens;
        this.bootstrap = bootstrap;
        this.quiet = quiet;
    }

    public TextQuality text(ScoringModel baseline, ScoringModel variant, List<String> documents, String label) {
        TextScores scores = TextScores.of(documents.size());
        try (Progress progress = Progress.start("text " + label, documents.size(), quiet)) {
            for (int d = 0; d < documents.size(); d++) {
                int[] tokens = tokenizer.encode(documents.get(d));
                if (tokens.length > maxTokens) {
                    tokens = Arrays.copyOf(tokens, maxTokens);
                }
                if (tokens.length >= 2) {
                    int[] next = Arrays.copyOfRange(tokens, 1, tokens.length);
                    int[] input = Arrays.copyOf(tokens, tokens.length);
                    double[][] b = baseline.logProbs(input, 0);
                    double[][] v = variant.logProbs(input, 0);
                    // the last position predicts a token beyond the document: not scored
                    scores.add(d, Arrays.copyOf(b, next.length), Arrays.copyOf(v, next.length), next);
                }
                progress.step();
            }
        }
        return scores.summarise(bootstrap);
    }

    public List<TaskResult> tasks(ScoringModel baseline, ScoringModel variant, List<Task> tasks, String label) {
        TaskScorer scorer = new TaskScorer(tokenizer, maxTokens);
        List<TaskResult> results = new ArrayList<>();
        for (Task task : tasks) {
            int n = task.items().size();
            double[] correctB = new double[n];
            double[] correctV = new double[n];
            double[] llB = new double[n];
            double[] llV = new double[n];
            int same = 0;
            boolean cloze = task.items().get(0).isCloze();
            try (Progress progress = Progress.start("task " + task.name() + " " + label, n, quiet)) {
                for (int i = 0; i < n; i++) {
                    TaskItem item = task.items().get(i);
                    TaskScorer.Prediction b = scorer.predict(baseline, item);
                    TaskScorer.Prediction v = scorer.predict(variant, item);
                    correctB[i] = b.correct() ? 1 : 0;
                    correctV[i] = v.correct() ? 1 : 0;
                    llB[i] = b.goldLogLikelihood();
                    llV[i] = v.goldLogLikelihood();
                    same += b.answer() == v.answer() ? 1 : 0;
                    progress.step();
                }
            }
            results.add(new TaskResult(task.name(), cloze ? "cloze" : "multiple_choice", n,
                    bootstrap.mean(correctB), bootstrap.mean(correctV), bootstrap.meanDifference(correctB, correctV),
                    bootstrap.mean(llB), bootstrap.mean(llV), bootstrap.meanDifference(llB, llV), (double) same / n));
        }
        return results;
    }
}
