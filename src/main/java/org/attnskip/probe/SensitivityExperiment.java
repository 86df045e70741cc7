package org.attnskip.probe;

import org.attnskip.eval.Bootstrap;
import org.attnskip.eval.DropCompensation;
import org.attnskip.eval.Progress;
import org.attnskip.eval.QualityEvaluator;
import org.attnskip.eval.ScoringModel;
import org.attnskip.eval.TextQuality;
import org.attnskip.rewrite.ChangeReport;
import org.attnskip.rewrite.LayerSelection;
import org.attnskip.rewrite.Mode;
import org.attnskip.rewrite.Rewrite;
import org.attnskip.rewrite.RewriteRequest;
import org.attnskip.runtime.DecoderSession;
import org.attnskip.runtime.OrtSessionFactory;
import org.attnskip.runtime.Tokenizer;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Measures rewritten variants of one model against it with the evaluator's text quality (the same
 * {@link QualityEvaluator} and {@link ScoringModel} the sweep uses, so a random variant is scored one
 * prefix per pass): the sensitivity curve of a manipulation for every k from 0 to L, the effect of
 * dropping one layer's attention alone, and any list of dropped layers. Keeps the baseline open.
 */
public final class SensitivityExperiment implements AutoCloseable {
    private final Path baseline;
    private final int numLayers;
    private final List<String> documents;
    private final OrtSessionFactory.Settings session;
    private final QualityEvaluator evaluator;
    private final Path scratch;
    private final int contextLength;
    private final String toolVersion;
    private final boolean quiet;
    private final DecoderSession baseSession;
    private final ScoringModel base;
    private int variants;
    private DropCompensation compensation;

    /** documents must already be cut to the ones to use; maxTokens cuts each of them. */
    public SensitivityExperiment(Path baseline, int numLayers, Tokenizer tokenizer, List<String> documents, int maxTokens,
                                 Bootstrap bootstrap, OrtSessionFactory.Settings session, Path scratch, int contextLength,
                                 String toolVersion, boolean quiet) {
        this.baseline = baseline;
        this.numLayers = numLayers;
        this.documents = documents;
        this.session = session;
        // the per-document progress is too fine here: the experiment reports per variant
        this.evaluator = new QualityEvaluator(tokenizer, maxTokens, bootstrap, true);
        this.scratch = scratch;
        this.contextLength = contextLength;
        this.toolVersion = toolVersion;
        this.quiet = quiet;
        this.baseSession = DecoderSession.open(baseline, session);
        this.base = new ScoringModel(baseSession);
    }

    /** Lets the experiment measure drop-compensated: maps fitted for each selection it measures. */
    public SensitivityExperiment compensatedBy(DropCompensation compensation) {
        this.compensation = compensation;
        return this;
    }

    public boolean quiet() {
        return quiet;
    }

    /** The context at which drop's attention FLOPs saved are reported. */
    public int contextLength() {
        return contextLength;
    }

    public int numLayers() {
        return numLayers;
    }

    /** One row per k = 0..L (k = L changes nothing). */
    public List<SensitivityRow> curve(RewriteRequest m) {
        List<SensitivityRow> rows = new ArrayList<>();
        try (Progress progress = Progress.start("sensitivity " + m.label(), numLayers + 1, quiet)) {
            for (int k = 0; k <= numLayers; k++) {
                rows.add(measure(m, LayerSelection.fromLayer(k, numLayers)));
                progress.step();
            }
        }
        return rows;
    }

    /** Dropping only layer i's attention, for each i. */
    public List<SensitivityRow> singleLayerDrops() {
        List<SensitivityRow> rows = new ArrayList<>();
        try (Progress progress = Progress.start("single-layer drop", numLayers, quiet)) {
            for (int i = 0; i < numLayers; i++) {
                rows.add(measure(RewriteRequest.drop(contextLength), LayerSelection.fromList(Integer.toString(i), numLayers)));
                progress.step();
            }
        }
        return rows;
    }

    /** Drop exactly these layers' attention. */
    public SensitivityRow dropLayers(List<Integer> layers) {
        if (layers.isEmpty()) {
            return measure(RewriteRequest.drop(contextLength), LayerSelection.fromLayer(numLayers, numLayers));
        }
        String list = String.join(",", layers.stream().map(String::valueOf).toList());
        return measure(RewriteRequest.drop(contextLength), LayerSelection.fromList(list, numLayers));
    }

    public SensitivityRow measure(RewriteRequest m, LayerSelection selection) {
        Path file = scratch.resolve("probe-variant-" + (variants++) + ".onnx");
        try {
            RewriteRequest request = m;
            if (m.compensated()) {
                if (compensation == null) {
                    throw new IllegalStateException("drop-compensated needs a calibration");
                }
                DropCompensation.Fitted fitted = compensation.fit(baseline, selection);
                request = m.fitted(fitted.maps(), fitted.metadata());
            }
            ChangeReport change = Rewrite.file(baseline, request, layers -> selection, file, toolVersion);
            TextQuality quality;
            try (DecoderSession v = DecoderSession.open(file, session)) {
                quality = evaluator.text(base, new ScoringModel(v), documents, m.label());
            }
            int k = selection.firstLayer();
            double prefill = m.mode() == Mode.FREEZE && k >= 0 ? (double) (numLayers - k) / numLayers : 0;
            return new SensitivityRow(m.label(), k, change.layers(), change.firstChangedLayer(), quality,
                    change.contextLength(), change.attentionFlopsSavedPerToken(), change.kvBytesPerTokenBefore(),
                    change.kvBytesPerTokenAfter(), prefill);
        } finally {
            try {
                Files.deleteIfExists(file);
                Files.deleteIfExists(file.resolveSibling(file.getFileName() + ".data"));
            } catch (IOException ignored) {
                // scratch space; its owner removes the directory
            }
        }
    }

    @Override
    public void close() {
        baseSession.close();
    }
}
