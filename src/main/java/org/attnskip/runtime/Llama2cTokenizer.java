package org.attnskip.runtime;

import org.attnskip.onnx.BadInputException;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * llama2.c's sentencepiece-style BPE tokenizer, read from its {@code tokenizer.bin} format
 * (little-endian): int32 max_token_length, then for each token a float32 score, an int32 byte
 * length and that many bytes. Encoding and decoding follow llama2.c's run.c exactly, including
 * its quirks (the merge loop also sees BOS; ties go to the leftmost pair).
 * Ids 0, 1, 2 are unk, BOS and EOS; ids 3..258 are the byte tokens {@code <0x00>..<0xFF>}.
 */
public final class Llama2cTokenizer implements Tokenizer {
    public static final int BOS = 1;
    public static final int EOS = 2;
    /** Byte b falls back to token id b + 3, after unk, BOS and EOS. */
    private static final int BYTE_TOKEN_OFFSET = 3;
    /** No real vocabulary has pieces this long; a larger max_token_length means another format. */
    private static final int MAX_PIECE_BYTES = 1 << 16;

    private final byte[][] pieces;
    private final float[] scores;
    /** Piece bytes (as ISO-8859-1 text, one char per byte) to id; the lowest id wins on duplicates. */
    private final Map<String, Integer> idsByPiece;

    private Llama2cTokenizer(byte[][] pieces, float[] scores) {
        this.pieces = pieces;
        this.scores = scores;
        this.idsByPiece = new HashMap<>();
        for (int id = 0; id < pieces.length; id++) {
            idsByPiece.putIfAbsent(key(pieces[id]), id);
        }
    }

    /** Reads every token in the file. */
    public static Llama2cTokenizer load(Path file) {
        return load(file, -1);
    }

    /** Reads exactly vocabSize tokens, as run.c does with the model's vocab_size; -1 reads them all. */
    public static Llama2cTokenizer load(Path file, int vocabSize) {
        byte[] bytes;
        try {
            bytes = Files.readAllBytes(file);
        } catch (NoSuchFileException e) {
            throw new BadInputException("tokenizer not found: " + file);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + file, e);
        }
        ByteBuffer in = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        if (in.remaining() < 4) {
            throw new BadInputException(file + ": truncated llama2.c tokenizer: no max_token_length");
        }
        int maxTokenLength = in.getInt();
        if (maxTokenLength <= 0 || maxTokenLength > MAX_PIECE_BYTES) {
            throw new BadInputException(file + ": not a llama2.c tokenizer: max_token_length is " + maxTokenLength);
        }
        List<byte[]> pieces = new ArrayList<>();
        List<Float> scores = new ArrayList<>();
        while (vocabSize < 0 ? in.hasRemaining() : pieces.size() < vocabSize) {
            int id = pieces.size();
            if (in.remaining() < 8) {
                throw new BadInputException(file + ": truncated llama2.c tokenizer at token " + id);
            }
            float score = in.getFloat();
            int length = in.getInt();
            if (length < 0 || length > maxTokenLength) {
                throw new BadInputException(file + ": token " + id + " has length " + length
                        + ", outside 0.." + maxTokenLength + "; not a llama2.c tokenizer?");
            }
            if (in.remaining() < length) {
                throw new BadInputException(file + ": truncated llama2.c tokenizer at token " + id);
            }
            byte[] piece = new byte[length];
            in.get(piece);
            pieces.add(piece);
            scores.add(score);
        }
        if (pieces.size() < BYTE_TOKEN_OFFSET + 256) {
            throw new BadInputException(file + ": llama2.c tokenizer has " + pieces.size()
                    + " tokens, fewer than unk, BOS, EOS and the 256 byte tokens");
        }
        float[] scoreArray = new float[scores.size()];
        for (int i = 0; i < scoreArray.length; i++) {
            scoreArray[i] = scores.get(i);
        }
        return new Llama2cTokenizer(pieces.toArray(new byte[0][]), scoreArray);
    }

    /** BOS, then the text; no EOS: what run.c feeds the model for a prompt. */
    @Override
    public int[] encode(String text) {
        return encode(text, true, false);
    }

    /**
     * run.c's encode: optional BOS, a dummy-prefix space token when the text is non-empty, one token
     * per UTF-8 code point (or one byte token per byte when the code point is not in the vocabulary),
     * then repeatedly merge the adjacent pair whose concatenation is the vocabulary piece with the
     * highest score, and an optional EOS. The text ends at its first NUL character, as a C string does.
     */
    public int[] encode(String text, boolean bos, boolean eos) {
        byte[] utf8 = text.getBytes(StandardCharsets.UTF_8);
        int nul = indexOf(utf8, (byte) 0);
        if (nul >= 0) {
            utf8 = Arrays.copyOf(utf8, nul);
        }
        int[] tokens = new int[utf8.length + 3];
        int n = 0;
        if (bos) {
            tokens[n++] = BOS;
        }
        if (utf8.length > 0) {
            int space = lookup(new byte[]{' '});
            tokens[n++] = space != -1 ? space : ' ' + BYTE_TOKEN_OFFSET; // run.c assumes " " is a piece
        }
        int i = 0;
        while (i < utf8.length) {
            // a code point: a leading byte plus up to 3 continuation bytes (run.c caps it at 4 bytes)
            int end = i + 1;
            while (end < utf8.length && isContinuation(utf8[end]) && end - i < 4) {
                end++;
            }
            byte[] codePoint = Arrays.copyOfRange(utf8, i, end);
            int id = lookup(codePoint);
            if (id != -1) {
                tokens[n++] = id;
            } else {
                for (byte b : codePoint) {
                    tokens[n++] = (b & 0xFF) + BYTE_TOKEN_OFFSET;
                }
            }
            i = end;
        }
        n = mergePairs(tokens, n);
        if (eos) {
            tokens[n++] = EOS;
        }
        return Arrays.copyOf(tokens, n);
    }

    /** Greedy BPE: merge the best-scoring adjacent pair until none is in the vocabulary. Returns the new length. */
    private int mergePairs(int[] tokens, int n) {
        while (true) {
            float bestScore = -1e10f;
            int bestId = -1;
            int bestIndex = -1;
            for (int i = 0; i < n - 1; i++) {
                int id = lookup(concat(pieces[tokens[i]], pieces[tokens[i + 1]]));
                if (id != -1 && scores[id] > bestScore) {
                    bestScore = scores[id];
                    bestId = id;
                    bestIndex = i;
                }
            }
            if (bestIndex == -1) {
                return n;
            }
            tokens[bestIndex] = bestId;
            System.arraycopy(tokens, bestIndex + 2, tokens, bestIndex + 1, n - bestIndex - 2);
            n--;
        }
    }

    @Override
    public String decode(int prev, int token) {
        return new String(decodeBytes(prev, token), StandardCharsets.UTF_8);
    }

    /**
     * run.c's decode: the piece of token, without its leading space when prev is BOS, and a byte
     * token ({@code <0xXX>}: "<0x" then one or two hex digits) becomes that raw byte.
     */
    public byte[] decodeBytes(int prev, int token) {
        checkId(token);
        byte[] piece = pieces[token];
        int start = prev == BOS && piece.length > 0 && piece[0] == ' ' ? 1 : 0;
        int rawByte = rawByte(piece, start);
        if (rawByte >= 0) {
            return new byte[]{(byte) rawByte};
        }
        return Arrays.copyOfRange(piece, start, piece.length);
    }

    /**
     * What run.c prints for a token sequence (ids[0] is the first token fed to the model, usually
     * BOS): decode(ids[i-1], ids[i]) for each i >= 1, skipping single bytes that are neither printable
     * ASCII nor whitespace (run.c's safe_printf), with the bytes read as UTF-8.
     */
    public String textOf(int[] ids) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (int i = 1; i < ids.length; i++) {
            byte[] piece = decodeBytes(ids[i - 1], ids[i]);
            if (piece.length == 1 && !isPrintableOrSpace(piece[0] & 0xFF)) {
                continue;
            }
            out.writeBytes(piece);
        }
        return out.toString(StandardCharsets.UTF_8);
    }

    /** The raw piece of a token, as stored in the file, read as UTF-8. */
    public String piece(int id) {
        checkId(id);
        return new String(pieces[id], StandardCharsets.UTF_8);
    }

    public float score(int id) {
        checkId(id);
        return scores[id];
    }

    @Override
    public int bos() {
        return BOS;
    }

    @Override
    public int eos() {
        return EOS;
    }

    @Override
    public int vocabSize() {
        return pieces.length;
    }

    private int lookup(byte[] piece) {
        return idsByPiece.getOrDefault(key(piece), -1);
    }

    private void checkId(int id) {
        if (id < 0 || id >= pieces.length) {
            throw new IllegalArgumentException("token id " + id + " outside the vocabulary 0.." + (pieces.length - 1));
        }
    }

    private static String key(byte[] piece) {
        return new String(piece, StandardCharsets.ISO_8859_1);
    }

    private static byte[] concat(byte[] a, byte[] b) {
        byte[] out = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }

    private static boolean isContinuation(byte b) {
        return (b & 0xC0) == 0x80;
    }

    /** The byte a "<0xXX>" piece stands for (from offset start), or -1. */
    private static int rawByte(byte[] piece, int start) {
        if (piece.length - start < 4 || piece[start] != '<' || piece[start + 1] != '0' || piece[start + 2] != 'x') {
            return -1;
        }
        int value = -1;
        for (int i = start + 3; i < Math.min(piece.length, start + 5); i++) {
            int digit = Character.digit(piece[i], 16);
            if (digit < 0) {
                break;
            }
            value = (value < 0 ? 0 : value * 16) + digit;
        }
        return value;
    }

    /** C's isprint || isspace in the "C" locale. */
    private static boolean isPrintableOrSpace(int b) {
        return (b >= 0x20 && b <= 0x7E) || (b >= 0x09 && b <= 0x0D);
    }

    private static int indexOf(byte[] bytes, byte value) {
        for (int i = 0; i < bytes.length; i++) {
            if (bytes[i] == value) {
                return i;
            }
        }
        return -1;
    }
}
