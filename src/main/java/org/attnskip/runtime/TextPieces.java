package org.attnskip.runtime;


import java.nio.charset.StandardCharsets;

/**
 * The text a generated token adds, by the same rule as {@code attnskip generate} (llama2.c's
 * safe_printf): a lone byte token that is neither printable ASCII nor whitespace adds nothing.
 */
public final class TextPieces {
    private final Tokenizer tokenizer;

    public TextPieces(Tokenizer tokenizer) {
        this.tokenizer = tokenizer;
    }

    /** The text of one token as run.c prints it: "" for a lone unprintable byte (safe_printf). */
    public String piece(int prev, int token) {
        if (tokenizer instanceof Llama2cTokenizer llama2c) {
            byte[] bytes = llama2c.decodeBytes(prev, token);
            if (bytes.length == 1 && !printableOrSpace(bytes[0] & 0xff)) {
                return "";
            }
            return new String(bytes, StandardCharsets.UTF_8);
        }
        return tokenizer.decode(prev, token);
    }

    private static boolean printableOrSpace(int b) {
        return (b >= 0x20 && b < 0x7f) || (b >= '\t' && b <= '\r');
    }
}
