package org.attnskip.eval;

import org.attnskip.rewrite.FreezeForm;
import org.attnskip.rewrite.FreezeKv;
import org.attnskip.rewrite.LayerSelection;
import org.attnskip.rewrite.Rewrite;
import org.attnskip.rewrite.RewriteRequest;
import org.attnskip.runtime.DecoderSession;
import org.attnskip.runtime.Device;
import org.attnskip.runtime.Llama2cTokenizer;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Developer tool (not a test): the KL gap between the two freeze flavours, with a bootstrap interval
 * that is paired over documents (both flavours scored on the same resampled documents).
 * For each frozen-layer count n (k = L - n): KL(baseline || paper), KL(baseline || single-input),
 * each as the sum over predicted positions divided by their count, and their difference; with
 * {@code -Dgap.drop=true} also drop of the same layers and the top-1 agreement of all three.
 * <pre>
 *   java [-Dgap.drop=true] -cp target/attnskip.jar:target/test-classes org.attnskip.eval.FreezeFlavourGap \
 *       MODEL.bin TOKENIZER.bin MAX_TOKENS FROZEN_LIST TEXT...
 * </pre>
 */
public final class FreezeFlavourGap {
    private FreezeFlavourGap() {
    }

    public static void main(String[] args) throws Exception {
        Path scratch = Files.createTempDirectory("freeze-gap");
        ModelSource source = ModelSource.resolve(Path.of(args[0]), Path.of(args[1]), scratch);
        int maxTokens = Integer.parseInt(args[2]);
        int[] frozen = Arrays.stream(args[3].split(",")).mapToInt(Integer::parseInt).toArray();
        List<String> docs = new ArrayList<>();
        for (int i = 4; i < args.length; i++) {
            docs.addAll(TextDocuments.read(Path.of(args[i])));
        }
        Llama2cTokenizer tokenizer = Llama2cTokenizer.load(source.tokenizer());
        int L = Rewrite.load(source.onnx()).layout().numLayers();
        FreezeKv[] flavours = FreezeKv.values();
        boolean withDrop = Boolean.getBoolean("gap.drop");
        int variantsPerCount = flavours.length + (withDrop ? 1 : 0);
        ScoringModel baseline = new ScoringModel(DecoderSession.open(source.onnx(), Device.CPU));
        ScoringModel[][] variants = new ScoringModel[frozen.length][variantsPerCount];
        TextScores[][] scores = new TextScores[frozen.length][variantsPerCount];
        for (int a = 0; a < frozen.length; a++) {
            for (int f = 0; f < variantsPerCount; f++) {
                Path out = scratch.resolve("variant-" + frozen[a] + "-" + f + ".onnx");
                RewriteRequest request = f < flavours.length ? RewriteRequest.freeze(flavours[f], FreezeForm.EVALUATION)
                        : RewriteRequest.drop(RewriteRequest.DEFAULT_CONTEXT);
                Rewrite.load(source.onnx()).write(request, LayerSelection.fromLayer(L - frozen[a], L), out, "dev");
                variants[a][f] = new ScoringModel(DecoderSession.open(out, Device.CPU));
                scores[a][f] = TextScores.of(docs.size());
            }
        }
        for (int d = 0; d < docs.size(); d++) {
            int[] tokens = tokenizer.encode(docs.get(d));
            tokens = Arrays.copyOf(tokens, Math.min(tokens.length, maxTokens));
            if (tokens.length < 2) {
                continue;
            }
            int[] next = Arrays.copyOfRange(tokens, 1, tokens.length);
            double[][] b = Arrays.copyOf(baseline.logProbs(tokens, 0), next.length);
            for (int a = 0; a < frozen.length; a++) {
                for (int f = 0; f < variantsPerCount; f++) {
                    scores[a][f].add(d, b, Arrays.copyOf(variants[a][f].logProbs(tokens, 0), next.length), next);
                }
            }
        }
        Bootstrap bootstrap = new Bootstrap(Bootstrap.DEFAULT_RESAMPLES, 0);
        long positions = (long) Arrays.stream(scores[0][0].positions()).sum();
        System.out.printf("%d documents, %d predicted positions, up to %d tokens each; 95%% bootstrap intervals over"
                + " documents, paired for the difference%n%n", docs.size(), positions, maxTokens);
        System.out.println("| frozen layers | paper KL | single-input KL | single-input - paper |"
                + (withDrop ? " drop KL | top-1 agreement paper / single-input / drop |" : ""));
        System.out.println("|---|---|---|---|" + (withDrop ? "---|---|" : ""));
        for (int a = 0; a < frozen.length; a++) {
            TextScores paper = scores[a][0];
            TextScores single = scores[a][1];
            Bootstrap.Statistic gap = items -> Bootstrap.sumOf(single.klSums(), items) / Bootstrap.sumOf(single.positions(), items)
                    - Bootstrap.sumOf(paper.klSums(), items) / Bootstrap.sumOf(paper.positions(), items);
            System.out.printf("| %d | %s | %s | %s |", frozen[a], fmt(bootstrap.ratioOfSums(paper.klSums(), paper.positions())),
                    fmt(bootstrap.ratioOfSums(single.klSums(), single.positions())), fmt(bootstrap.estimate(docs.size(), gap)));
            if (withDrop) {
                TextScores drop = scores[a][2];
                System.out.printf(" %s | %.3f / %.3f / %.3f |", fmt(bootstrap.ratioOfSums(drop.klSums(), drop.positions())),
                        share(paper), share(single), share(drop));
            }
            System.out.println();
        }
    }

    private static double share(TextScores t) {
        return Arrays.stream(t.agreements()).sum() / Arrays.stream(t.positions()).sum();
    }

    private static String fmt(Estimate e) {
        return String.format("%.4f [%.4f, %.4f]", e.value(), e.low(), e.high());
    }
}
