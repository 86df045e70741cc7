package org.attnskip.runtime;

import org.attnskip.Golden;
import org.attnskip.onnx.BadInputException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.*;

class Llama2cTokenizerTest {
    @TempDir
    Path tmp;

    @Test
    void encodesEveryGoldenPromptLikeLlama2c() {
        for (String model : Golden.MODELS) {
            Llama2cTokenizer tokenizer = Llama2cTokenizer.load(Golden.tokenizer(model), 512);
            for (String name : Golden.NAMES) {
                Golden golden = Golden.load(model, name);
                assertArrayEquals(golden.promptIds(), tokenizer.encode(golden.prompt()), model + "/" + name);
            }
        }
    }

    @Test
    void readsTheWholeVocabulary() {
        Llama2cTokenizer tokenizer = Llama2cTokenizer.load(Golden.tokenizer("stories260K"));
        assertEquals(512, tokenizer.vocabSize());
        assertEquals(1, tokenizer.bos());
        assertEquals(2, tokenizer.eos());
        assertEquals("<0x41>", tokenizer.piece(3 + 0x41));
        assertEquals(" a", tokenizer.piece(261));
        assertEquals(-2.0f, tokenizer.score(261));
    }

    @Test
    void dummyPrefixMergesAndEos() {
        Llama2cTokenizer tokenizer = Llama2cTokenizer.load(Golden.tokenizer("stories260K"));
        assertArrayEquals(new int[]{1}, tokenizer.encode(""), "no dummy prefix for empty text");
        assertArrayEquals(new int[]{1, 2}, tokenizer.encode("", true, true));
        // " " (410) then "a" merge into " a" (261)
        assertArrayEquals(new int[]{261}, tokenizer.encode("a", false, false));
        assertArrayEquals(new int[]{1, 261, 2}, tokenizer.encode("a", true, true));
    }

    @Test
    void unknownCodePointsFallBackToBytes() {
        Llama2cTokenizer tokenizer = Llama2cTokenizer.load(Golden.tokenizer("stories260K"));
        // é (C3 A9) is a piece of its own, 485
        assertArrayEquals(new int[]{1, 410, 485}, tokenizer.encode("é"));
        assertEquals("é", tokenizer.textOf(tokenizer.encode("é")));
        // ü is C3 BC in UTF-8 and not in the vocabulary: byte tokens 0xC3 + 3 and 0xBC + 3 after the space
        assertArrayEquals(new int[]{1, 410, 0xC3 + 3, 0xBC + 3}, tokenizer.encode("ü"));
        assertArrayEquals(new byte[]{(byte) 0xC3}, tokenizer.decodeBytes(410, 0xC3 + 3));
        // run.c's safe_printf drops lone non-ASCII bytes, so it prints nothing for ü
        assertEquals("", tokenizer.textOf(tokenizer.encode("ü")));
        // a 4-byte code point not in the vocabulary: four byte tokens (F0 9F 98 80)
        assertArrayEquals(new int[]{1, 410, 0xF0 + 3, 0x9F + 3, 0x98 + 3, 0x80 + 3}, tokenizer.encode("\uD83D\uDE00"));
        assertEquals("\n", tokenizer.decode(5, 13), "<0x0A> is a newline");
    }

    @Test
    void decodeStripsTheSpaceOnlyAfterBos() {
        Llama2cTokenizer tokenizer = Llama2cTokenizer.load(Golden.tokenizer("stories260K"));
        assertEquals("a", tokenizer.decode(1, 261));
        assertEquals(" a", tokenizer.decode(5, 261));
        assertEquals("Once upon a time", tokenizer.textOf(new int[]{1, 403, 407, 261, 378}));
    }

    @Test
    void truncatedTokenizerIsABadInput() throws IOException {
        byte[] bytes = Files.readAllBytes(Golden.tokenizer("stories260K"));
        Path cut = tmp.resolve("tok.bin");
        Files.write(cut, Arrays.copyOf(bytes, bytes.length - 3));
        String message = assertThrows(BadInputException.class, () -> Llama2cTokenizer.load(cut)).getMessage();
        assertTrue(message.contains("truncated llama2.c tokenizer at token 511"), message);
        message = assertThrows(BadInputException.class,
                () -> Llama2cTokenizer.load(Golden.tokenizer("stories260K"), 600)).getMessage();
        assertTrue(message.contains("truncated llama2.c tokenizer at token 512"), message);

        Path text = tmp.resolve("text.bin");
        Files.writeString(text, "{\"model\": {\"type\": \"BPE\"}}", StandardCharsets.UTF_8);
        message = assertThrows(BadInputException.class, () -> Llama2cTokenizer.load(text)).getMessage();
        assertTrue(message.contains("not a llama2.c tokenizer"), message);
    }
}
