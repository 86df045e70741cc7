package org.attnskip.serve;

import java.util.List;

/**
 * The tokens a choice's log-probabilities cover, in order: the prompt's when it is echoed, then the
 * generated ones whose text the choice returns. Each knows its text, and where that text starts in
 * the prompt followed by the completion (in code points, as Python counts OpenAI's text_offset).
 */
record TokenTrace(List<Entry> entries) {
    /**
     * @param logprob  null for the first prompt token (nothing predicts it) or when no log-probabilities were asked
     * @param topTexts the text of each of logprob's alternatives, in its order
     */
    record Entry(int id, String text, int textOffset, TokenLogprob logprob, String[] topTexts) {
    }
}
