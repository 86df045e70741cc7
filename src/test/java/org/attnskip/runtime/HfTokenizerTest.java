package org.attnskip.runtime;

import org.attnskip.Fixtures;
import org.attnskip.onnx.BadInputException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** Llama's sentencepiece-style tokenizer.json (from the ortgenai-llama-fp16 fixture). */
class HfTokenizerTest {
    @TempDir
    Path tmp;

    @Test
    void specialTokensVocabularyAndBosFirst() {
        try (HfTokenizer t = HfTokenizer.load(Fixtures.model("ortgenai-llama-fp16/tokenizer.json"))) {
            assertEquals(1, t.bos());
            assertEquals(2, t.eos());
            assertEquals(32000, t.vocabSize());
            // ids of Llama 2's tokenizer: "▁Hello" 15043, "▁world" 3186, "," 29892
            assertArrayEquals(new int[] {1, 15043, 3186, 29892}, t.encode("Hello world,"));
            assertArrayEquals(new int[] {1}, t.encode(""));
        }
    }

    @Test
    void piecesAfterEachOtherRebuildTheText() {
        try (HfTokenizer t = HfTokenizer.load(Fixtures.model("ortgenai-llama-fp16/tokenizer.json"))) {
            String text = "Once upon a time, Tim's cat (named Émile) sat on 3 mats.";
            int[] ids = t.encode(text);
            StringBuilder rebuilt = new StringBuilder();
            for (int i = 1; i < ids.length; i++) {
                rebuilt.append(t.decode(ids[i - 1], ids[i]));
            }
            assertEquals(text, rebuilt.toString());
        }
    }

    @Test
    void aFileThatIsNotATokenizerIsBadInput() throws IOException {
        Path junk = Files.writeString(tmp.resolve("tokenizer.json"), "{\"hello\": 1}");
        assertThrows(BadInputException.class, () -> HfTokenizer.load(junk));
        assertThrows(BadInputException.class, () -> HfTokenizer.load(tmp.resolve("missing.json")));
    }
}
