package org.attnskip.runtime;

import org.attnskip.export.ModelManifest;

import java.nio.file.Path;

/** Opens a tokenizer file of either kind: Hugging Face's tokenizer.json, or llama2.c's tokenizer.bin. */
public final class TokenizerFiles {
    public static final String LLAMA2C = ModelManifest.TokenizerRef.LLAMA2C;
    public static final String HUGGINGFACE = ModelManifest.TokenizerRef.HUGGINGFACE;

    private TokenizerFiles() {
    }

    /** The kind a file name implies: {@code .json} is Hugging Face's, anything else llama2.c's. */
    public static String kindOf(Path file) {
        return ModelManifest.TokenizerRef.forFile(file.getFileName().toString()).kind();
    }

    /**
     * @param kind      {@link #LLAMA2C}, {@link #HUGGINGFACE}, or null to go by the file name
     * @param vocabSize the model's vocabulary size, which llama2.c's format needs to know how many
     *                  tokens to read (as run.c does); -1 to read them all
     */
    public static Tokenizer open(Path file, String kind, int vocabSize) {
        String k = kind != null ? kind : kindOf(file);
        return switch (k) {
            case HUGGINGFACE -> HfTokenizer.load(file);
            case LLAMA2C -> Llama2cTokenizer.load(file, vocabSize);
            default -> throw new org.attnskip.onnx.BadInputException("unknown tokenizer kind '" + k
                    + "': use " + LLAMA2C + " or " + HUGGINGFACE);
        };
    }
}
