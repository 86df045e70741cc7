package org.attnskip.eval;

import java.util.List;
import java.util.Map;

/**
 * Everything one baseline-vs-variant evaluation measured, with its configuration and provenance.
 *
 * @param generation null when it was not measured (no tokenizer, no documents, or a random graph)
 */
public record EvalReport(Map<String, Object> config, Provenance provenance, ModelInfo baseline, ModelInfo variant,
                         TextQuality text, List<TaskResult> tasks, GenerationAgreement generation, LatencyResult latency) {
}
