package org.attnskip.hostile;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A bounded pass of the mutation campaign ({@link MutationCampaign}): {@code -Dattnskip.mutations=N}
 * cases per target (default 15, about 200 in all); {@code -Dattnskip.mutationSeed=S} another seed.
 */
class MutationCampaignTest {
    @TempDir
    Path tmp;

    @Test
    void mutatedInputsExitZeroOrTwoAndLeaveNothingBehind() throws IOException {
        int cases = Integer.getInteger("attnskip.mutations", 15);
        long seed = Long.getLong("attnskip.mutationSeed", 1);
        Map<String, MutationCampaign.Tally> result = new MutationCampaign(tmp, seed).run(cases);
        System.out.print(MutationCampaign.summary(result));
        for (var e : result.entrySet()) {
            MutationCampaign.Tally t = e.getValue();
            assertEquals(java.util.List.of(), t.failures, e.getKey());
            assertTrue(t.exit2 > 0, e.getKey() + ": no mutant was refused, so none reached a check");
        }
    }
}
