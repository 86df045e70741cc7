package org.attnskip.eval;

import org.attnskip.runtime.DecoderSession;
import org.attnskip.runtime.Generator;
import org.attnskip.runtime.Tokenizer;

import java.util.List;

/**
 * The baseline side of greedy-generation agreement: its continuations of the prompts are made on
 * first use and kept, so a sweep compares every threshold's variant with one set of them.
 */
final class GreedyBaseline {
    private final GreedyAgreement agreement;
    private final Generator baseline;
    private final Tokenizer tokenizer;
    private final List<String> prompts;
    private int[][] continuations;

    GreedyBaseline(GreedyAgreement agreement, DecoderSession baseline, Tokenizer tokenizer, List<String> prompts) {
        this.agreement = agreement;
        this.baseline = new Generator(baseline, tokenizer);
        this.tokenizer = tokenizer;
        this.prompts = prompts;
    }

    GenerationAgreement against(DecoderSession variant) {
        if (continuations == null) {
            continuations = agreement.continuations(baseline, prompts);
        }
        return agreement.compare(continuations, new Generator(variant, tokenizer), prompts);
    }
}
