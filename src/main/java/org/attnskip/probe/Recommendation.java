package org.attnskip.probe;

import java.util.List;

/**
 * What the probe recommends for one manipulation at the user's tolerance.
 *
 * @param k         the smallest k whose measured quality is within tolerance (L = change nothing);
 *                  -1 for the non-contiguous drop
 * @param layers    the layers the recommended variant changes
 * @param evidence  the measured row of that variant (quality with bootstrap intervals, predicted saving)
 * @param agreement which other probes agree with the choice, one sentence each
 * @param note      non-monotone curves and the like, or null
 */
public record Recommendation(String mode, String tolerance, int k, List<Integer> layers, SensitivityRow evidence,
                             List<String> agreement, String note) {
}
