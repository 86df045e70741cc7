package org.attnskip.serve;

import java.util.ArrayList;
import java.util.List;

/**
 * One choice of a response: which prompt it continues and how. A request with P prompts and n
 * choices each has P * n of them; choice {@code index} = prompt * n + sample, as OpenAI numbers them.
 *
 * @param promptIds    BOS first when the tokenizer adds one (token-id prompts are taken as sent)
 * @param seed         this choice's sampler seed
 * @param logprobs     alternatives per token, -1 for none
 * @param stopTokenIds tokens besides BOS and EOS that end the choice (a chat template's end of turn)
 */
record Choice(int index, int promptIndex, int[] promptIds, long seed, int logprobs, boolean echo, int[] stopTokenIds) {

    /**
     * The choices of a request, prompt by prompt. Sample 0 of every prompt uses the request's seed
     * itself, so a prompt gets the same first choice alone or in a list (and the same as {@code
     * attnskip generate --seed}); the other samples use seeds derived from it, each its own stream.
     */
    static List<Choice> expand(CompletionRequest request, List<int[]> promptIds, int[] stopTokenIds, long requestSeed) {
        List<Choice> out = new ArrayList<>();
        for (int p = 0; p < promptIds.size(); p++) {
            for (int j = 0; j < request.n(); j++) {
                out.add(new Choice(p * request.n() + j, p, promptIds.get(p), j == 0 ? requestSeed : derivedSeed(requestSeed, j),
                        request.logprobs(), request.echo(), stopTokenIds));
            }
        }
        return out;
    }

    /** SplitMix64 of the seed advanced j steps: well-spread seeds for neighbouring samples. */
    static long derivedSeed(long seed, int j) {
        long z = seed + j * 0x9E3779B97F4A7C15L;
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    boolean stopsAt(int token) {
        for (int id : stopTokenIds) {
            if (id == token) {
                return true;
            }
        }
        return false;
    }
}
