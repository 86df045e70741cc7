package org.attnskip.eval;

import org.attnskip.runtime.DecoderSession;
import org.attnskip.runtime.OpenedSession;
import org.attnskip.runtime.Tokenizer;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/** Baseline against variant on the same inputs: text quality, task accuracy and latency. */
public final class Evaluation {
    private final EvalSettings settings;
    /** The fallback is the same for every session of a command: say it once, not once per session. */
    private boolean fallbackSaid;

    public Evaluation(EvalSettings settings) {
        this.settings = settings;
    }

    public EvalReport compare(Path baseline, Path variant, Tokenizer tokenizer, List<String> documents, List<Task> tasks,
                              Map<String, Object> config, String toolVersion) {
        try (DecoderSession b = open(baseline); DecoderSession v = open(variant)) {
            ScoringModel base = new ScoringModel(b);
            ScoringModel var = new ScoringModel(v);
            Provenance provenance = provenance(b.opened(), toolVersion);
            PointResult r = measure(base, var, tokenizer, documents, tasks, "");
            GenerationAgreement generation = generation(b, v, var, tokenizer, documents);
            return new EvalReport(config, provenance, info(baseline, base), info(variant, var), r.text(), r.tasks(),
                    generation, r.latency());
        }
    }

    /** Greedy continuations of this many documents' openings are compared (eval; the sweep uses fewer, per point). */
    static final int GENERATION_PROMPTS = 16;
    static final int SWEEP_GENERATION_PROMPTS = 8;
    static final int GENERATION_PROMPT_TOKENS = 16;
    static final int GENERATION_NEW_TOKENS = 32;

    private GenerationAgreement generation(DecoderSession b, DecoderSession v, ScoringModel var, Tokenizer tokenizer,
                                           List<String> documents) {
        // the generation loop feeds no noise, so a random graph cannot generate
        GreedyBaseline greedy = greedyBaseline(b, tokenizer, documents, GENERATION_PROMPTS);
        return greedy == null || var.needsNoise() ? null : greedy.against(v);
    }

    /** Null when there is nothing to generate from (no tokenizer or no documents). */
    GreedyBaseline greedyBaseline(DecoderSession b, Tokenizer tokenizer, List<String> documents, int prompts) {
        if (tokenizer == null || documents.isEmpty()) {
            return null;
        }
        return new GreedyBaseline(new GreedyAgreement(tokenizer, GENERATION_PROMPT_TOKENS, GENERATION_NEW_TOKENS,
                new Bootstrap(settings.bootstrapResamples(), settings.seed())), b, tokenizer,
                documents.subList(0, Math.min(prompts, documents.size())));
    }

    /** The measurements of one variant against an open baseline. */
    record PointResult(TextQuality text, List<TaskResult> tasks, LatencyResult latency) {
    }

    PointResult measure(ScoringModel base, ScoringModel var, Tokenizer tokenizer, List<String> documents, List<Task> tasks,
                        String label) {
        return measure(base, var, var, tokenizer, documents, tasks, label);
    }

    /** As above, timing {@code timed}: a graph equal in output to {@code var} but built for speed. */
    PointResult measure(ScoringModel base, ScoringModel var, ScoringModel timed, Tokenizer tokenizer, List<String> documents,
                        List<Task> tasks, String label) {
        QualityEvaluator quality = new QualityEvaluator(tokenizer, settings.maxTokens(),
                new Bootstrap(settings.bootstrapResamples(), settings.seed()), settings.quiet());
        List<String> docs = settings.maxDocuments() > 0 && documents.size() > settings.maxDocuments()
                ? documents.subList(0, settings.maxDocuments()) : documents;
        TextQuality text = docs.isEmpty() ? null : quality.text(base, var, docs, label);
        List<TaskResult> taskResults = tokenizer == null ? List.of() : quality.tasks(base, var, tasks, label);
        LatencyResult latency = settings.latency() == null ? null
                : new LatencyBench(settings.latency(), settings.quiet()).run(base, timed, vocab(base, tokenizer));
        return new PointResult(text, taskResults, latency);
    }

    DecoderSession open(Path model) {
        DecoderSession s = DecoderSession.open(model, settings.session());
        if (s.opened().fallbackNote() != null && !settings.quiet() && !fallbackSaid) {
            System.err.println("attnskip: " + s.opened().fallbackNote());
            fallbackSaid = true;
        }
        return s;
    }

    Provenance provenance(OpenedSession opened, String toolVersion) {
        return Provenance.collect(toolVersion, settings.device().cliName(), opened.device().cliName(), opened.fallbackNote(),
                settings.threads(), settings.optimization().name());
    }

    static ModelInfo info(Path path, ScoringModel model) {
        return new ModelInfo(path.toString(), model.rewrite(), model.session().kvBytesPerToken());
    }

    private static int vocab(ScoringModel model, Tokenizer tokenizer) {
        int v = model.session().vocabSize();
        return v > 0 ? v : tokenizer != null ? tokenizer.vocabSize() : 256;
    }
}
