package org.attnskip.serve;

import org.attnskip.onnx.OnnxModelIO;
import org.attnskip.rewrite.RewriteMetadata;
import org.attnskip.runtime.DecoderSession;
import org.attnskip.runtime.Device;
import org.attnskip.runtime.ModelLocation;
import org.attnskip.runtime.Tokenizer;
import org.attnskip.runtime.TokenizerFiles;

import java.nio.file.Path;
import java.util.Map;

/**
 * The graph a server answers with: its session (shared by all requests; each request keeps its own
 * KV cache), its tokenizer, and what {@code attnskip optimize} recorded about it.
 */
public final class ServedModel implements AutoCloseable {
    private final String id;
    private final Path modelFile;
    private final DecoderSession session;
    private final Tokenizer tokenizer;
    private final Map<String, String> rewrite;
    private final int maxPositions;

    private ServedModel(String id, Path modelFile, DecoderSession session, Tokenizer tokenizer, Map<String, String> rewrite,
                        int maxPositions) {
        this.id = id;
        this.modelFile = modelFile;
        this.session = session;
        this.tokenizer = tokenizer;
        this.rewrite = rewrite;
        this.maxPositions = maxPositions;
    }

    /**
     * @param model     a model directory from {@code attnskip export}/{@code optimize}, or an .onnx file
     * @param tokenizer overrides the directory's tokenizer; required for a bare .onnx file
     */
    public static ServedModel open(Path model, Path tokenizer, Device device) {
        ModelLocation location = ModelLocation.resolve(model, tokenizer);
        Path modelFile = location.modelFile();
        Map<String, String> rewrite = RewriteMetadata.read(OnnxModelIO.load(modelFile).proto());
        DecoderSession session = DecoderSession.open(modelFile, device);
        try {
            Tokenizer tok = TokenizerFiles.open(location.tokenizerFile(), location.tokenizerKind(),
                    location.vocabSize() > 0 ? location.vocabSize() : session.vocabSize());
            return new ServedModel(location.name(), modelFile, session, tok, rewrite, location.maxPositions());
        } catch (RuntimeException e) {
            session.close();
            throw e;
        }
    }

    /** The name clients see in /v1/models and may pass as "model". */
    public String id() {
        return id;
    }

    public Path modelFile() {
        return modelFile;
    }

    public DecoderSession session() {
        return session;
    }

    public Tokenizer tokenizer() {
        return tokenizer;
    }

    /** mode, threshold, layers... as optimize stamped them; empty for a graph it did not rewrite. */
    public Map<String, String> rewrite() {
        return rewrite;
    }

    /** Positions the model was trained for (prompt plus completion); unbounded for a bare .onnx file. */
    public int maxPositions() {
        return maxPositions;
    }

    @Override
    public void close() {
        if (tokenizer instanceof AutoCloseable c) {
            try {
                c.close();
            } catch (Exception ignored) {
                // closing a tokenizer at shutdown has nothing left to protect
            }
        }
        session.close();
    }
}
