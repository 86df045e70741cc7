package org.attnskip.probe;

import org.attnskip.eval.Progress;
import org.attnskip.runtime.LogProbs;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.attnskip.onnx.BadInputException;
import org.attnskip.reference.Manipulation;
import org.attnskip.reference.ReferenceLlama;
import org.attnskip.runtime.Tokenizer;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The paper's switch experiment. The prompt is {@link #TEMPLATE} for a country; at layer k the
 * state of the country's last token is overwritten with the layer-k state of the injected
 * country's last token in "The country &lt;injected&gt;" ({@link Manipulation.Switch}). For every k
 * it reports, over the pairs, the share of greedy answers whose first word is the original
 * capital's or the injected capital's first word, and, for models too small to answer, the mean
 * log-probability (teacher-forced, summed over its tokens) of each capital after the prompt.
 */
public final class SwitchExperiment {
    /** The one-shot example uses Spain, so pairs should not. */
    public static final String TEMPLATE = "Q: What is the capital of Spain?\nA: Madrid\nQ: What is the capital of %s?\nA:";
    public static final String SOURCE_TEMPLATE = "The country %s";
    /** Greedy tokens generated per answer: enough for the first word of a capital. */
    static final int ANSWER_TOKENS = 4;

    public record Pair(String country, String capital, String injected, String injectedCapital) {
    }

    /**
     * One row. layer -1 is the unmanipulated model. Shares are over the pairs; logProb* are means
     * over the pairs, in nats.
     */
    public record LayerResult(int layer, int pairs, double followsOriginal, double followsInjected,
                              double prefersInjected, double logProbOriginal, double logProbInjected) {
    }

    public record Result(LayerResult baseline, List<LayerResult> layers) {
    }

    private final ReferenceLlama model;
    private final Tokenizer tokenizer;

    public SwitchExperiment(ReferenceLlama model, Tokenizer tokenizer) {
        this.model = model;
        this.tokenizer = tokenizer;
    }

    public static List<Pair> readPairs(Path jsonl) {
        ObjectMapper json = new ObjectMapper();
        List<Pair> pairs = new ArrayList<>();
        try {
            int line = 0;
            for (String text : Files.readAllLines(jsonl)) {
                line++;
                if (text.isBlank()) {
                    continue;
                }
                JsonNode n = json.readTree(text);
                for (String field : List.of("country", "capital", "injected", "injected_capital")) {
                    if (!n.hasNonNull(field) || n.get(field).asText().isBlank()) {
                        throw new BadInputException(jsonl + " line " + line + ": missing \"" + field + "\"");
                    }
                }
                pairs.add(new Pair(n.get("country").asText(), n.get("capital").asText(), n.get("injected").asText(),
                        n.get("injected_capital").asText()));
            }
        } catch (IOException e) {
            throw new BadInputException("cannot read " + jsonl + ": " + e.getMessage(), e);
        }
        if (pairs.isEmpty()) {
            throw new BadInputException(jsonl + " holds no country pairs");
        }
        return pairs;
    }

    /** Runs every pair at every layer 0..L-1 (the switch is at the layer's input) and without a switch. */
    public Result run(List<Pair> pairs) {
        return run(pairs, true);
    }

    /** As above, showing progress per pair and layer unless quiet: on a large model each takes minutes. */
    public Result run(List<Pair> pairs, boolean quiet) {
        int layers = model.config().layers();
        try (Progress progress = Progress.start("switch experiment", (long) (layers + 1) * pairs.size(), quiet)) {
            List<Prepared> prepared = pairs.stream().map(this::prepare).toList();
            LayerResult baseline = measure(-1, prepared, progress);
            List<LayerResult> rows = new ArrayList<>();
            for (int k = 0; k < layers; k++) {
                rows.add(measure(k, prepared, progress));
            }
            return new Result(baseline, rows);
        }
    }

    /** A pair tokenised: the prompt, where the country ends in it and in the source, both answers. */
    private record Prepared(Pair pair, int[] prompt, int countryPosition, float[][][] sourceStreams, int sourcePosition,
                            int[] withOriginal, int originalFrom, int[] withInjected, int injectedFrom) {
    }

    /** The position of the country's last token in the pair's prompt, and that token's text. */
    String countryToken(Pair p) {
        Prepared prepared = prepare(p);
        int pos = prepared.countryPosition();
        return pos + ":" + tokenizer.decode(prepared.prompt()[pos - 1], prepared.prompt()[pos]);
    }

    private Prepared prepare(Pair p) {
        String prompt = TEMPLATE.formatted(p.country());
        int[] promptIds = tokenizer.encode(prompt);
        int countryPosition = tokenEnding(promptIds, prompt.lastIndexOf(p.country()) + p.country().length());
        String source = SOURCE_TEMPLATE.formatted(p.injected());
        int[] sourceIds = tokenizer.encode(source);
        int sourcePosition = tokenEnding(sourceIds, source.length());
        int[] withOriginal = tokenizer.encode(prompt + " " + p.capital());
        int[] withInjected = tokenizer.encode(prompt + " " + p.injectedCapital());
        return new Prepared(p, promptIds, countryPosition, model.residualStreams(sourceIds), sourcePosition,
                withOriginal, commonPrefix(promptIds, withOriginal), withInjected, commonPrefix(promptIds, withInjected));
    }

    private LayerResult measure(int layer, List<Prepared> prepared, Progress progress) {
        int original = 0;
        int injected = 0;
        int prefersInjected = 0;
        double logOriginal = 0;
        double logInjected = 0;
        for (Prepared p : prepared) {
            Manipulation m = layer < 0 ? Manipulation.NONE
                    : new Manipulation.Switch(layer, p.countryPosition(), p.sourceStreams()[layer][p.sourcePosition()]);
            String answer = firstWord(greedyAnswer(p.prompt(), m));
            if (answer.equalsIgnoreCase(firstWord(p.pair().capital()))) {
                original++;
            } else if (answer.equalsIgnoreCase(firstWord(p.pair().injectedCapital()))) {
                injected++;
            }
            double lo = logProb(p.withOriginal(), p.originalFrom(), m);
            double li = logProb(p.withInjected(), p.injectedFrom(), m);
            logOriginal += lo;
            logInjected += li;
            if (li > lo) {
                prefersInjected++;
            }
            progress.step();
        }
        int n = prepared.size();
        return new LayerResult(layer, n, (double) original / n, (double) injected / n, (double) prefersInjected / n,
                logOriginal / n, logInjected / n);
    }

    /** The text of up to ANSWER_TOKENS greedy tokens after the prompt, under the manipulation. */
    private String greedyAnswer(int[] prompt, Manipulation m) {
        int[] seq = prompt.clone();
        StringBuilder text = new StringBuilder();
        for (int i = 0; i < ANSWER_TOKENS && seq.length < model.config().seqLen(); i++) {
            float[][] logits = model.logitsAllPositions(seq, m);
            int next = ReferenceLlama.argmax(logits[seq.length - 1]);
            if (next == tokenizer.bos() || next == tokenizer.eos()) {
                break;
            }
            text.append(tokenizer.decode(seq[seq.length - 1], next));
            seq = java.util.Arrays.copyOf(seq, seq.length + 1);
            seq[seq.length - 1] = next;
            if (text.toString().contains("\n")) {
                break;
            }
        }
        return text.toString();
    }

    /** log P(tokens[from..]) given tokens[..from), teacher-forced, in nats. */
    private double logProb(int[] tokens, int from, Manipulation m) {
        float[][] logits = model.logitsAllPositions(tokens, m);
        double sum = 0;
        for (int t = from; t < tokens.length; t++) {
            sum += LogProbs.logSoftmax(logits[t - 1])[tokens[t]];
        }
        return sum;
    }


    /** The index of the token whose decoded text covers character end-1 of the text (BOS decodes to nothing). */
    private int tokenEnding(int[] ids, int end) {
        StringBuilder text = new StringBuilder();
        int start = ids.length > 0 && ids[0] == tokenizer.bos() ? 1 : 0;
        for (int i = start; i < ids.length; i++) {
            text.append(tokenizer.decode(i == 0 ? -1 : ids[i - 1], ids[i]));
            // Some tokenizers decode a leading dummy space; compare on the text without it.
            String decoded = text.toString().stripLeading();
            if (decoded.length() >= end) {
                return i;
            }
        }
        throw new BadInputException("cannot locate character " + end + " in the tokens of the prompt");
    }

    private static int commonPrefix(int[] a, int[] b) {
        int n = 0;
        while (n < a.length && n < b.length && a[n] == b[n]) {
            n++;
        }
        if (n == b.length) {
            throw new IllegalStateException("the answer added no tokens to the prompt");
        }
        return Math.max(n, 1);
    }

    private static String firstWord(String text) {
        String[] words = text.strip().split("[\\s\\p{Punct}]+");
        return words.length == 0 ? "" : words[0];
    }
}
