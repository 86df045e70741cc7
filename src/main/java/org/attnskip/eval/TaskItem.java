package org.attnskip.eval;

import java.util.List;

/**
 * One item of a log-likelihood task. Multiple choice: the choice with the highest log-likelihood
 * after the context must be {@code gold}. Cloze: one "choice", the continuation, which counts as
 * correct when every one of its tokens is the model's greedy (top-1) prediction.
 */
public record TaskItem(String context, List<String> choices, int gold) {
    public boolean isCloze() {
        return gold < 0;
    }

    public static TaskItem cloze(String context, String continuation) {
        return new TaskItem(context, List.of(continuation), -1);
    }
}
