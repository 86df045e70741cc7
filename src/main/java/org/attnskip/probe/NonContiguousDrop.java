package org.attnskip.probe;

import java.util.List;

/**
 * The greedy non-contiguous drop: layers in the order of {@code ranking} (least important first),
 * each kept in the dropped set only when the measured combination stays within tolerance.
 *
 * @param rankedBy what the ranking is ("single-layer drop KL" or "attention 1 - cos")
 * @param steps    every combination tried, in order
 * @param layers   the final dropped set (sorted)
 * @param evidence the measurement of exactly that set
 */
public record NonContiguousDrop(String tolerance, String rankedBy, List<Integer> ranking, List<Step> steps,
                                List<Integer> layers, SensitivityRow evidence) {
    /** One tried combination: the layer added, whether it was kept, and the measured set. */
    public record Step(int layer, boolean kept, SensitivityRow measured) {
    }
}
