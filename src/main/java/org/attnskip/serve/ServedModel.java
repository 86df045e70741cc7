package org.attnskip.serve;

import org.attnskip.export.ModelDirectory;
import org.attnskip.onnx.BadInputException;
import org.attnskip.onnx.OnnxModelIO;
import org.attnskip.rewrite.RewriteMetadata;
import org.attnskip.runtime.DecoderSession;
import org.attnskip.runtime.Device;
import org.attnskip.runtime.Tokenizer;
import org.attnskip.runtime.TokenizerFiles;

import java.nio.file.Files;
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
        Path modelFile;
        Path tokenizerFile = tokenizer;
        String kind = null;
        int vocab = -1;
        int maxPositions = Integer.MAX_VALUE;
        String id;
        if (Files.isDirectory(model) && ModelDirectory.isModelDirectory(model)) {
            ModelDirectory dir = ModelDirectory.read(model);
            modelFile = dir.modelFile();
            vocab = dir.manifest().architecture().vocab();
            maxPositions = dir.manifest().architecture().maxPositions();
            if (tokenizerFile == null) {
                tokenizerFile = dir.tokenizerFile();
                if (tokenizerFile == null) {
                    throw new BadInputException("model directory " + model + " has no tokenizer; name one with --tokenizer FILE");
                }
                kind = dir.manifest().tokenizer().kind();
            }
            id = model.toAbsolutePath().normalize().getFileName().toString();
        } else {
            modelFile = OnnxModelIO.resolveModelFile(model);
            if (tokenizerFile == null) {
                throw new BadInputException("an .onnx file needs --tokenizer FILE (or give a model directory from 'attnskip export')");
            }
            String name = modelFile.getFileName().toString();
            id = name.endsWith(".onnx") ? name.substring(0, name.length() - 5) : name;
        }
        if (!Files.isRegularFile(tokenizerFile)) {
            throw new BadInputException("no such tokenizer file: " + tokenizerFile);
        }
        Map<String, String> rewrite = RewriteMetadata.read(OnnxModelIO.load(modelFile).proto());
        DecoderSession session = DecoderSession.open(modelFile, device);
        try {
            Tokenizer tok = TokenizerFiles.open(tokenizerFile, kind, vocab > 0 ? vocab : session.vocabSize());
            return new ServedModel(id, modelFile, session, tok, rewrite, maxPositions);
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
