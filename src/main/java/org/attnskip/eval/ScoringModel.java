package org.attnskip.eval;

import org.attnskip.runtime.LogProbs;
import ai.onnxruntime.NodeInfo;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import ai.onnxruntime.TensorInfo;
import org.attnskip.reference.Noise;
import org.attnskip.reference.NoiseDraw;
import org.attnskip.rewrite.RandomNoisePass;
import org.attnskip.rewrite.RewriteMetadata;
import org.attnskip.runtime.DecoderSession;
import org.attnskip.runtime.LogitRows;
import org.attnskip.runtime.Logits;
import org.attnskip.runtime.OrtSessionFactory;

import java.nio.FloatBuffer;
import java.nio.LongBuffer;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;

/**
 * Log-probabilities of a decoder graph at every position of a token sequence, with an empty cache.
 * Drop and freeze graphs (and unmodified ones) give valid logits at every position of one
 * prefill. A random graph's noise replaces the hidden vectors of every position but the last, so
 * only its last position is what the manipulation defines: it is scored with one pass per prefix,
 * feeding the noise {@link NoiseDraw} makes for the seed recorded in the graph's metadata. A
 * deployable freeze graph outputs the last position only and is scored the same way.
 */
public final class ScoringModel {
    private final DecoderSession session;
    private final Map<String, String> rewrite;
    private final String noiseInput;
    private final Noise noise;
    private final long seed;
    private final int noiseWidth;
    private final boolean lastPositionOnly;

    public ScoringModel(DecoderSession session) {
        this.session = session;
        OrtSession ort = session.opened().session();
        try {
            Map<String, String> custom = ort.getMetadata().getCustomMetadata();
            Map<String, String> props = new HashMap<>();
            custom.forEach((k, v) -> {
                if (k.startsWith(RewriteMetadata.PREFIX)) {
                    props.put(k.substring(RewriteMetadata.PREFIX.length()), v);
                }
            });
            rewrite = Map.copyOf(props);
            Map<String, NodeInfo> inputs = ort.getInputInfo();
            // A deployable freeze graph declares logits [batch, 1, vocab]: the last position only.
            long[] logitsShape = ((TensorInfo) ort.getOutputInfo().get(session.io().logits()).getInfo()).getShape();
            boolean slicedLogits = logitsShape.length == 3 && logitsShape[1] == 1;
            String input = inputs.containsKey(RandomNoisePass.NOISE_INPUT) ? RandomNoisePass.NOISE_INPUT
                    : inputs.containsKey(RandomNoisePass.PERMUTATION_INPUT) ? RandomNoisePass.PERMUTATION_INPUT : null;
            noiseInput = input;
            if (input != null) {
                long[] shape = ((TensorInfo) inputs.get(input).getInfo()).getShape();
                noiseWidth = (int) shape[shape.length - 1];
                noise = Noise.parse(rewrite.getOrDefault("noise",
                        input.equals(RandomNoisePass.PERMUTATION_INPUT) ? "shuffle" : "gaussian"));
                seed = Long.parseLong(rewrite.getOrDefault("seed", "0"));
            } else {
                noiseWidth = 0;
                noise = null;
                seed = 0;
            }
            lastPositionOnly = input != null || slicedLogits;
        } catch (OrtException e) {
            throw new IllegalStateException("cannot read the session's metadata: " + e.getMessage(), e);
        }
    }

    public DecoderSession session() {
        return session;
    }

    /** The attnskip.* metadata of the graph (mode, threshold, layers...), empty for an original graph. */
    public Map<String, String> rewrite() {
        return rewrite;
    }

    /** True when the graph takes a noise input (the random manipulation). */
    public boolean needsNoise() {
        return noiseInput != null;
    }

    /** True when only the last position of a pass is valid (random graphs, deployable freeze graphs). */
    public boolean scoresOnePrefixPerPass() {
        return lastPositionOnly;
    }

    /**
     * rows[p - from] = log-softmax of the logits at position p (predicting token p + 1), for p from
     * {@code from} to tokens.length - 1.
     */
    public double[][] logProbs(int[] tokens, int from) {
        double[][] rows = new double[tokens.length - from][];
        if (!lastPositionOnly) {
            Logits logits = pass(tokens, tokens.length, LogitRows.ALL);
            for (int p = from; p < tokens.length; p++) {
                rows[p - from] = LogProbs.logSoftmax(logits.at(0, p));
            }
        } else {
            for (int p = from; p < tokens.length; p++) {
                // one pass per prefix, of which only the last position is read
                rows[p - from] = LogProbs.logSoftmax(pass(tokens, p + 1, LogitRows.LAST).last(0));
            }
        }
        return rows;
    }

    /**
     * One run of the next tokens of one sequence after the cache, feeding the noise a random graph
     * needs (the positions of this run); the cache is consumed as by {@link DecoderSession#append}.
     */
    public DecoderSession.Output append(int[] next, org.attnskip.runtime.KvCache cache) {
        return append(next, cache, LogitRows.ALL);
    }

    /** As above, with the logits of the positions {@code rows} says the caller reads. */
    public DecoderSession.Output append(int[] next, org.attnskip.runtime.KvCache cache, LogitRows rows) {
        if (noiseInput == null) {
            return session.append(next, cache, rows);
        }
        try (OnnxTensor noiseTensor = noiseTensor(next.length)) {
            return session.append(next, cache, Map.of(noiseInput, noiseTensor), rows);
        } catch (OrtException e) {
            cache.close();
            throw new IllegalStateException("cannot make the noise tensor: " + e.getMessage(), e);
        }
    }

    private Logits pass(int[] tokens, int length, LogitRows rows) {
        DecoderSession.Output out = append(java.util.Arrays.copyOf(tokens, length), session.emptyCache(1), rows);
        out.cache().close();
        return out.logits();
    }

    private OnnxTensor noiseTensor(int length) throws OrtException {
        var env = OrtSessionFactory.environment();
        long[] shape = {1, length, noiseWidth};
        if (noise instanceof Noise.Shuffle) {
            int[][] rows = NoiseDraw.permutations(seed, length, noiseWidth);
            long[] flat = new long[length * noiseWidth];
            for (int t = 0; t < length; t++) {
                for (int j = 0; j < noiseWidth; j++) {
                    flat[t * noiseWidth + j] = rows[t][j];
                }
            }
            return OnnxTensor.createTensor(env, LongBuffer.wrap(flat), shape);
        }
        float[][] rows = NoiseDraw.gaussian(seed, length, noiseWidth);
        float[] flat = new float[length * noiseWidth];
        for (int t = 0; t < length; t++) {
            System.arraycopy(rows[t], 0, flat, t * noiseWidth, noiseWidth);
        }
        return OnnxTensor.createTensor(env, FloatBuffer.wrap(flat), shape);
    }

    @Override
    public String toString() {
        return "ScoringModel" + Arrays.asList(rewrite);
    }
}
