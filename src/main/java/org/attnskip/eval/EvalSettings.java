package org.attnskip.eval;

import ai.onnxruntime.OrtSession.SessionOptions.OptLevel;
import org.attnskip.runtime.Device;
import org.attnskip.runtime.OrtSessionFactory;

/**
 * How an evaluation runs.
 *
 * @param threads      intra-op threads, 0 for all cores
 * @param maxTokens    documents and task items are cut to this many tokens
 * @param maxDocuments at most this many documents of the text file (the first ones), 0 for all
 * @param latency      null to skip the latency bench
 */
public record EvalSettings(Device device, int threads, OptLevel optimization, int maxTokens, int maxDocuments,
                           int bootstrapResamples, long seed, LatencyBench.Config latency, boolean quiet) {
    public OrtSessionFactory.Settings session() {
        return new OrtSessionFactory.Settings(device, threads, optimization);
    }

    /**
     * These settings for a model of {@code maxPositions} positions: documents cut to fit, and
     * latency points that would run past the end dropped, each drop reported to {@code note}.
     */
    public EvalSettings fittedTo(int maxPositions, java.util.function.Consumer<String> note) {
        int tokens = Math.min(maxTokens, maxPositions);
        if (tokens < maxTokens) {
            note.accept("documents cut to " + tokens + " tokens: the model has " + maxPositions + " positions");
        }
        LatencyBench.Config fitted = latency == null ? null : latency.fittedTo(maxPositions, note);
        return new EvalSettings(device, threads, optimization, tokens, maxDocuments, bootstrapResamples, seed, fitted, quiet);
    }
}
