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
    void pairsFileHasAtLeastThirtyDistinctUnorderedPairsWithoutTheExampleCountry() {
        List<SwitchExperiment.Pair> pairs = SwitchExperiment.readPairs(PAIRS);
        // France>Italy and Italy>France are one pair of countries: count sets, not lines.
        Set<Set<String>> unordered = new HashSet<>();
        for (SwitchExperiment.Pair p : pairs) {
            assertNotEquals(p.country(), p.injected());
            // Answers are told apart by their first word.
            assertNotEquals(p.capital().split(" ")[0], p.injectedCapital().split(" ")[0], p.toString());
            assertTrue(!p.country().equals("Spain") && !p.injected().equals("Spain"));
            assertTrue(unordered.add(Set.of(p.country(), p.injected())), "repeated pair " + p);
        }
        assertTrue(unordered.size() >= 30, "distinct unordered pairs: " + unordered.size());
    }

    @Test
    void everyCountryIsLocatedInTheStories260KTokens() {
        var weights = Llama2cCheckpoint.read(Fixtures.model("stories260K/stories260K.bin"));
        var tokenizer = Llama2cTokenizer.load(Fixtures.model("stories260K/tok512.bin"), weights.config.vocabSize());
        var experiment = new SwitchExperiment(new ReferenceLlama(weights), tokenizer);
        for (var p : SwitchExperiment.readPairs(PAIRS)) {
            String token = experiment.countryToken(p);
            String piece = token.substring(token.indexOf(':') + 1).strip();
            assertTrue(!piece.isEmpty() && p.country().endsWith(piece), p.country() + " ends with token " + token);
        }
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
