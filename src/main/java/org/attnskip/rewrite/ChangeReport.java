package org.attnskip.rewrite;

import java.util.ArrayList;
import java.util.List;

/**
 * What a rewrite pass did, in numbers a user can check.
 *
 * @param firstChangedLayer the first layer whose output differs from the original model's, or -1
 * @param contextLength the context at which attention FLOPs saved are counted; 0 for modes that save
 *                      none per generated token (freeze saves prefill work only, random nothing)
 * @param attentionFlopsSavedPerToken multiply-adds x2 saved per generated token at {@code contextLength}
 */
public record ChangeReport(
        Mode mode,
        String threshold,
        List<Integer> layers,
        int firstChangedLayer,
        int nodesRemoved,
        int nodesAdded,
        long paramsRemoved,
        int contextLength,
        long attentionFlopsSavedPerToken,
        long kvBytesPerTokenBefore,
        long kvBytesPerTokenAfter,
        List<String> inputsRemoved,
        List<String> outputsRemoved,
        List<String> notes) {

    /** The same report with these lines after its notes. */
    public ChangeReport withMoreNotes(List<String> more) {
        if (more.isEmpty()) {
            return this;
        }
        List<String> all = new ArrayList<>(notes);
        all.addAll(more);
        return new ChangeReport(mode, threshold, layers, firstChangedLayer, nodesRemoved, nodesAdded, paramsRemoved,
                contextLength, attentionFlopsSavedPerToken, kvBytesPerTokenBefore, kvBytesPerTokenAfter, inputsRemoved,
                outputsRemoved, List.copyOf(all));
    }
}
