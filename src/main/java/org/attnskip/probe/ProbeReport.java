package org.attnskip.probe;

import java.util.List;
import java.util.Map;

/**
 * Everything one probe run measured; an experiment that was not run is null.
 *
 * @param representations per stream l = 0..L (l = L: the last layer's output)
 * @param importance      per layer: attention and block 1 - cos
 * @param sensitivity     curves, single-layer drops and recommendations
 */
public record ProbeReport(Map<String, Object> config, List<RepresentationProbe.LayerMetrics> representations,
                          List<SingleLayerImportance.Layer> importance, SwitchExperiment.Result switchExperiment,
                          SensitivityProbe.Result sensitivity, List<String> notes) {
}
