package org.attnskip.eval;

import org.attnskip.runtime.Tokenizer;

import java.nio.charset.StandardCharsets;

/**
 * A stand-in tokenizer for models that come without one (synthetic weights): BOS = 1, EOS = 2, and
 * each UTF-8 byte b is token 3 + b. Quality numbers of such a model mean nothing; it lets the
 * demo run every stage end to end.
 */
public final class ByteTokenizer implements Tokenizer {
    private final int vocabSize;

    public ByteTokenizer(int vocabSize) {
        if (vocabSize < 259) {
            throw new IllegalArgumentException("a byte tokenizer needs a vocabulary of at least 259");
        }
        this.vocabSize = vocabSize;
    }

    @Override
    public int[] encode(String text) {
        byte[] bytes = text.getBytes(StandardCharsets.UTF_8);
        int[] ids = new int[bytes.length + 1];
        ids[0] = 1;
        for (int i = 0; i < bytes.length; i++) {
            ids[i + 1] = 3 + (bytes[i] & 0xFF);
        }
        return ids;
    }

    @Override
    public String decode(int prev, int token) {
        return token >= 3 && token < 259 ? new String(new byte[] {(byte) (token - 3)}, StandardCharsets.ISO_8859_1) : "";
    }

    @Override
    public int bos() {
        return 1;
    }

    @Override
    public int eos() {
        return 2;
    }

    @Override
    public int vocabSize() {
        return vocabSize;
    }
}
