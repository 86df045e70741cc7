package org.attnskip.probe;

import org.attnskip.Fixtures;
import org.attnskip.export.Llama2cCheckpoint;
import org.attnskip.reference.ReferenceLlama;
import org.attnskip.runtime.Llama2cTokenizer;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SwitchExperimentTest {
    private static final Path PAIRS = Path.of("eval/probe/country_pairs.jsonl");

    @Test
    void pairsFileHasAtLeastThirtyDistinctPairsWithoutTheExampleCountry() {
        List<SwitchExperiment.Pair> pairs = SwitchExperiment.readPairs(PAIRS);
        assertTrue(pairs.size() >= 30, "pairs: " + pairs.size());
        Set<String> distinct = new HashSet<>();
        for (SwitchExperiment.Pair p : pairs) {
            assertNotEquals(p.country(), p.injected());
            assertNotEquals(p.capital(), p.injectedCapital());
            assertTrue(!p.country().equals("Spain") && !p.injected().equals("Spain"));
            distinct.add(p.country() + ">" + p.injected());
        }
        assertEquals(pairs.size(), distinct.size());
    }

    @Test
    void runsOnStories260K() {
        var weights = Llama2cCheckpoint.read(Fixtures.model("stories260K/stories260K.bin"));
        var tokenizer = Llama2cTokenizer.load(Fixtures.model("stories260K/tok512.bin"), weights.config.vocabSize());
        List<SwitchExperiment.Pair> pairs = SwitchExperiment.readPairs(PAIRS).subList(0, 4);
        var experiment = new SwitchExperiment(new ReferenceLlama(weights), tokenizer);
        for (var p : pairs) {
            String token = experiment.countryToken(p);
            String piece = token.substring(token.indexOf(':') + 1).strip();
            assertTrue(!piece.isEmpty() && p.country().endsWith(piece), p.country() + " ends with token " + token);
        }
        var result = new SwitchExperiment(new ReferenceLlama(weights), tokenizer).run(pairs);
        assertEquals(weights.config.layers(), result.layers().size());
        assertEquals(-1, result.baseline().layer());
        for (var row : result.layers()) {
            assertEquals(pairs.size(), row.pairs());
            assertTrue(row.followsOriginal() + row.followsInjected() <= 1.0);
            assertTrue(row.logProbOriginal() < 0 && row.logProbInjected() < 0 && Double.isFinite(row.logProbOriginal()));
            System.out.println(row);
        }
        System.out.println("baseline " + result.baseline());
        // Switching the country at the embedding changes what the model predicts after it.
        assertNotEquals(result.baseline().logProbInjected(), result.layers().get(0).logProbInjected());
    }
}
