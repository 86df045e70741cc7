package org.attnskip.runtime;

/** Text to token ids and back, whatever the tokenizer's file format. */
public interface Tokenizer {

    /** The ids to feed the model for this text: BOS first when the model uses one, no EOS. */
    int[] encode(String text);

    /** The text that token adds when it follows prev (some tokenizers strip a space after BOS). */
    String decode(int prev, int token);

    /** -1 when there is none. */
    int bos();

    /** -1 when there is none. */
    int eos();

    int vocabSize();
}
