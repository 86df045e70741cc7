package org.attnskip.eval;

import org.attnskip.runtime.LogProbs;
import org.attnskip.runtime.Tokenizer;

import java.util.Arrays;
import java.util.List;

/**
 * Scores task items by log-likelihood as lm-evaluation-harness does: the context and the
 * context + continuation are tokenized, the continuation's tokens are those after their common
 * prefix (so a merge across the boundary moves the split rather than breaking it), and the
 * continuation's log-likelihood is the sum of its tokens' log-probabilities.
 */
public final class TaskScorer {
    private final Tokenizer tokenizer;
    private final int maxTokens;

    /** @param maxTokens the longest sequence a model takes; longer items keep their end */
    public TaskScorer(Tokenizer tokenizer, int maxTokens) {
        this.tokenizer = tokenizer;
        this.maxTokens = maxTokens;
    }

    /** A context + continuation as tokens and the index of the first continuation token. */
    public record Split(int[] tokens, int continuationStart) {
    }

    public Split split(String context, String continuation) {
        int[] ctx = tokenizer.encode(context);
        int[] whole = tokenizer.encode(context + continuation);
        int common = 0;
        while (common < ctx.length && common < whole.length && ctx[common] == whole[common]) {
            common++;
        }
        common = Math.max(1, Math.min(common, whole.length - 1));
        if (whole.length > maxTokens) {
            int cut = whole.length - maxTokens;
            whole = Arrays.copyOfRange(whole, cut, whole.length);
            common = Math.max(1, common - cut);
        }
        return new Split(whole, common);
    }

    /** Log-likelihood of the continuation and whether each of its tokens is the model's top-1. */
    public record Score(double logLikelihood, boolean greedy) {
    }

    public Score score(ScoringModel model, Split split) {
        int start = split.continuationStart();
        double[][] rows = model.logProbs(split.tokens(), start - 1);
        double sum = 0;
        boolean greedy = true;
        for (int t = start; t < split.tokens().length; t++) {
            double[] row = rows[t - start];
            int target = split.tokens()[t];
            sum += row[target];
            greedy &= LogProbs.argmax(row) == target;
        }
        return new Score(sum, greedy);
    }

    /** The index of the best choice (multiple choice) or 1/0 for a greedy match (cloze), and the gold log-likelihood. */
    public record Prediction(int answer, boolean correct, double goldLogLikelihood) {
    }

    public Prediction predict(ScoringModel model, TaskItem item) {
        List<String> choices = item.choices();
        if (item.isCloze()) {
            Score s = score(model, split(item.context(), choices.get(0)));
            return new Prediction(s.greedy() ? 1 : 0, s.greedy(), s.logLikelihood());
        }
        int best = -1;
        double bestLl = Double.NEGATIVE_INFINITY;
        double goldLl = 0;
        for (int c = 0; c < choices.size(); c++) {
            double ll = score(model, split(item.context(), choices.get(c))).logLikelihood();
            if (ll > bestLl) {
                bestLl = ll;
                best = c;
            }
            if (c == item.gold()) {
                goldLl = ll;
            }
        }
        return new Prediction(best, best == item.gold(), goldLl);
    }
}
