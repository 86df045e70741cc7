package org.attnskip.runtime;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.attnskip.onnx.BadInputException;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;

/**
 * A Hugging Face {@code tokenizer.json}, through DJL's binding of the tokenizers library. BOS and
 * EOS are found by their usual names in the file's vocabulary; {@link #encode} puts BOS first when
 * there is one, whatever the file's own post-processor would add. A token's text is the growth of the
 * decoded text when it is appended after prev, which keeps the spaces that decoding a lone
 * sentencepiece or byte-level token would lose.
 */
public final class HfTokenizer implements Tokenizer, AutoCloseable {
    private static final String[] BOS_NAMES = {"<s>", "<|begin_of_text|>", "<bos>", "<|startoftext|>"};
    private static final String[] EOS_NAMES = {"</s>", "<|end_of_text|>", "<|endoftext|>", "<eos>", "<|im_end|>", "<|eot_id|>"};

    private final HuggingFaceTokenizer tokenizer;
    private final int bos;
    private final int eos;
    private final int vocabSize;

    private HfTokenizer(HuggingFaceTokenizer tokenizer, Map<String, Integer> vocab) {
        this.tokenizer = tokenizer;
        this.bos = findId(vocab, BOS_NAMES);
        this.eos = findId(vocab, EOS_NAMES);
        this.vocabSize = vocab.values().stream().mapToInt(Integer::intValue).max().orElse(-1) + 1;
    }

    public static HfTokenizer load(Path file) {
        if (!Files.isRegularFile(file)) {
            throw new BadInputException("tokenizer not found: " + file);
        }
        quietDjlLogging();
        try {
            Map<String, Integer> vocab = vocabulary(file);
            return new HfTokenizer(HuggingFaceTokenizer.newInstance(file), vocab);
        } catch (IOException | RuntimeException e) {
            throw new BadInputException("cannot read Hugging Face tokenizer " + file + ": " + e.getMessage(), e);
        }
    }

    /**
     * DJL logs through SLF4J, and with no SLF4J binding on the class path SLF4J prints a three-line
     * warning on stderr. Unless the application chose a provider, pick SLF4J's own no-op one.
     */
    private static void quietDjlLogging() {
        if (System.getProperty("slf4j.provider") == null) {
            System.setProperty("slf4j.provider", "org.slf4j.helpers.NOP_FallbackServiceProvider");
            if (System.getProperty("slf4j.internal.verbosity") == null) {
                System.setProperty("slf4j.internal.verbosity", "WARN"); // not even "loading the provider you named"
            }
        }
    }

    /** Every token of the file by its text: the model's vocabulary and the added (special) tokens. */
    private static Map<String, Integer> vocabulary(Path file) throws IOException {
        JsonNode root = new ObjectMapper().readTree(file.toFile());
        Map<String, Integer> vocab = new HashMap<>();
        JsonNode modelVocab = root.path("model").path("vocab");
        if (modelVocab.isObject()) {
            modelVocab.fields().forEachRemaining(e -> vocab.put(e.getKey(), e.getValue().asInt()));
        } else if (modelVocab.isArray()) {
            // Unigram models list [piece, score] pairs, the id being the position.
            for (int i = 0; i < modelVocab.size(); i++) {
                vocab.put(modelVocab.get(i).path(0).asText(), i);
            }
        }
        for (JsonNode added : root.path("added_tokens")) {
            vocab.put(added.path("content").asText(), added.path("id").asInt());
        }
        if (vocab.isEmpty()) {
            throw new BadInputException(file + " has no vocabulary (model.vocab); is it a tokenizer.json?");
        }
        return vocab;
    }

    private static int findId(Map<String, Integer> vocab, String[] names) {
        for (String name : names) {
            Integer id = vocab.get(name);
            if (id != null) {
                return id;
            }
        }
        return -1;
    }

    @Override
    public int[] encode(String text) {
        long[] ids = tokenizer.encode(text, false, false).getIds();
        int offset = bos >= 0 ? 1 : 0;
        int[] out = new int[ids.length + offset];
        if (bos >= 0) {
            out[0] = bos;
        }
        for (int i = 0; i < ids.length; i++) {
            out[i + offset] = (int) ids[i];
        }
        return out;
    }

    @Override
    public String decode(int prev, int token) {
        if (prev < 0 || prev == bos) {
            return tokenizer.decode(new long[] {token}, true);
        }
        String before = tokenizer.decode(new long[] {prev}, true);
        String both = tokenizer.decode(new long[] {prev, token}, true);
        return both.startsWith(before) ? both.substring(before.length()) : tokenizer.decode(new long[] {token}, true);
    }

    @Override
    public int bos() {
        return bos;
    }

    @Override
    public int eos() {
        return eos;
    }

    @Override
    public int vocabSize() {
        return vocabSize;
    }

    @Override
    public void close() {
        tokenizer.close();
    }
}
