package org.attnskip.export;

import org.attnskip.onnx.BadInputException;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;

/**
 * Random Llama weights of any shape, for latency measurements on models we cannot download.
 * Scales keep the forward pass well-behaved: every matrix has standard deviation 1/sqrt(fan_in)
 * so a unit-RMS input gives unit-RMS outputs, norms are 1 plus a little noise, and embeddings
 * have unit variance. Values are uniform with those standard deviations (bounded, and
 * SplittableRandom's algorithm is fixed by its specification, so a seed means the same weights
 * on every JDK). Each tensor has its own random stream, so tensors are made one at a time when a
 * streaming export asks for them.
 */
public final class SyntheticWeights {
    private static final List<String> REQUIRED = List.of("layers", "hidden", "heads", "ffn", "vocab");
    private static final Set<String> KNOWN = Set.of("layers", "hidden", "heads", "kv_heads", "ffn", "vocab", "seq", "theta");
    public static final int DEFAULT_SEQ = 2048;
    public static final float DEFAULT_THETA = 10000f;
    private static final float NORM_NOISE = 0.1f;

    private SyntheticWeights() {
    }

    /**
     * @param spec like {@code layers=16,hidden=2048,heads=32,kv_heads=8,ffn=8192,vocab=32000};
     *             optional {@code kv_heads} (default heads), {@code seq} (default 2048) and
     *             {@code theta} (default 10000)
     */
    public static LlamaWeights generate(String spec, long seed) {
        return LlamaWeights.load(source(spec, seed));
    }

    /** The same weights as {@link #generate}, each tensor made when asked for. */
    public static LlamaWeightSource source(String spec, long seed) {
        return new Source(parse(spec), seed);
    }

    /**
     * Tensor t of the model (0 the embedding, then nine per layer, then the final norm and the
     * classifier) is filled from its own stream seeded by (seed, t), so any tensor can be made alone.
     */
    private static final class Source implements LlamaWeightSource {
        private static final int PER_LAYER = 9;
        private final LlamaConfig c;
        private final long seed;
        private final float matrixStd;
        private final float downStd;

        Source(LlamaConfig c, long seed) {
            this.c = c;
            this.seed = seed;
            this.matrixStd = (float) (1 / Math.sqrt(c.dim()));
            this.downStd = (float) (1 / Math.sqrt(c.hiddenDim()));
        }

        @Override
        public LlamaConfig config() {
            return c;
        }

        @Override
        public WeightRows weight(WeightPart part, int layer) {
            int[] shape = part.shape(c);
            int t = 1 + PER_LAYER * layer;
            return switch (part) {
                case EMBEDDING -> stream(0, shape, 0f, 1f);
                case ATTN_NORM -> stream(t, shape, 1f, NORM_NOISE);
                case WQ -> stream(t + 1, shape, 0f, matrixStd);
                case WK -> stream(t + 2, shape, 0f, matrixStd);
                case WV -> stream(t + 3, shape, 0f, matrixStd);
                case WO -> stream(t + 4, shape, 0f, matrixStd);
                case FFN_NORM -> stream(t + 5, shape, 1f, NORM_NOISE);
                case W1 -> stream(t + 6, shape, 0f, matrixStd);
                case W2 -> stream(t + 7, shape, 0f, downStd);
                case W3 -> stream(t + 8, shape, 0f, matrixStd);
                case FINAL_NORM -> stream(1 + PER_LAYER * c.layers(), shape, 1f, NORM_NOISE);
                case CLASSIFIER -> stream(2 + PER_LAYER * c.layers(), shape, 0f, matrixStd);
                case BQ, BK, BV -> throw new IllegalArgumentException("synthetic weights have no " + part);
            };
        }

        @Override
        public boolean classifierIsEmbedding() {
            return false;
        }

        private WeightRows stream(int tensor, int[] shape, float mean, float std) {
            return new Stream(new SplittableRandom(seed * 0x9E3779B97F4A7C15L + tensor), shape[0], shape[1], mean, std);
        }
    }

    /**
     * One tensor's values in order from its own generator: a uniform on [-r, r] has standard
     * deviation r / sqrt(3), and each 64-bit draw gives two 32-bit uniforms on [-1, 1) (low half
     * first), halving the generator calls. Rows come in order, so a tensor is made block by block.
     */
    private static final class Stream extends ShapedRows {
        private final SplittableRandom random;
        private final float mean;
        private final float scale;
        private long next;
        private boolean haveHigh;
        private float high;

        Stream(SplittableRandom random, int rows, int cols, float mean, float std) {
            super(rows, cols);
            this.random = random;
            this.mean = mean;
            this.scale = (float) (std * Math.sqrt(3) * 0x1p-31);
        }

        @Override
        public void read(int first, int count, float[] into, int at) {
            if ((long) first * cols != next) {
                throw new IllegalStateException("synthetic rows are made in order: asked for row " + first
                        + " after " + next / cols + " rows");
            }
            int n = count * cols;
            int i = 0;
            if (haveHigh && n > 0) {
                into[at] = high;
                haveHigh = false;
                i = 1;
            }
            for (; i + 1 < n; i += 2) {
                long bits = random.nextLong();
                into[at + i] = mean + (int) bits * scale;
                into[at + i + 1] = mean + (int) (bits >>> 32) * scale;
            }
            if (i < n) {
                long bits = random.nextLong();
                into[at + i] = mean + (int) bits * scale;
                high = mean + (int) (bits >>> 32) * scale;
                haveHigh = true;
            }
            next += n;
        }
    }

    /** Validates the spec and turns it into a config (no weights). */
    public static LlamaConfig parse(String spec) {
        Map<String, String> values = new LinkedHashMap<>();
        for (String part : spec.split(",")) {
            if (part.isBlank()) {
                continue;
            }
            int eq = part.indexOf('=');
            if (eq < 0) {
                throw bad(spec, "'" + part.trim() + "' is not key=value");
            }
            String key = part.substring(0, eq).trim();
            if (!KNOWN.contains(key)) {
                throw bad(spec, "unknown key " + key + " (known: layers, hidden, heads, kv_heads, ffn, vocab, seq, theta)");
            }
            if (values.put(key, part.substring(eq + 1).trim()) != null) {
                throw bad(spec, "key " + key + " is given twice");
            }
        }
        for (String key : REQUIRED) {
            if (!values.containsKey(key)) {
                throw bad(spec, "missing key " + key + " (required: " + String.join(", ", REQUIRED) + ")");
            }
        }
        int layers = positiveInt(spec, values, "layers");
        int hidden = positiveInt(spec, values, "hidden");
        int heads = positiveInt(spec, values, "heads");
        int kvHeads = values.containsKey("kv_heads") ? positiveInt(spec, values, "kv_heads") : heads;
        int ffn = positiveInt(spec, values, "ffn");
        int vocab = positiveInt(spec, values, "vocab");
        int seq = values.containsKey("seq") ? positiveInt(spec, values, "seq") : DEFAULT_SEQ;
        float theta = values.containsKey("theta") ? positiveFloat(spec, values, "theta") : DEFAULT_THETA;
        if (hidden % heads != 0) {
            throw bad(spec, "hidden " + hidden + " is not divisible by heads " + heads);
        }
        if (heads % kvHeads != 0) {
            throw bad(spec, "heads " + heads + " is not divisible by kv_heads " + kvHeads);
        }
        if ((hidden / heads) % 2 != 0) {
            throw bad(spec, "head size hidden/heads = " + hidden / heads + " is odd; rotary needs it even");
        }
        if ((long) Math.max(Math.max(vocab, ffn), hidden) * hidden > Integer.MAX_VALUE - 8) {
            throw bad(spec, "a weight matrix would exceed the 2^31 elements a Java array holds");
        }
        int bos = vocab > 2 ? 1 : -1; // llama2.c's convention: 1 = BOS, 2 = EOS
        int eos = vocab > 2 ? 2 : -1;
        return new LlamaConfig(hidden, ffn, layers, heads, kvHeads, vocab, seq, 1e-5f, theta, null,
                false, false, bos, eos);
    }

    private static int positiveInt(String spec, Map<String, String> values, String key) {
        try {
            int v = Integer.parseInt(values.get(key));
            if (v > 0) {
                return v;
            }
        } catch (NumberFormatException ignored) {
            // reported below
        }
        throw bad(spec, key + " must be a positive integer, not '" + values.get(key) + "'");
    }

    private static float positiveFloat(String spec, Map<String, String> values, String key) {
        try {
            float v = Float.parseFloat(values.get(key));
            if (v > 0 && Float.isFinite(v)) {
                return v;
            }
        } catch (NumberFormatException ignored) {
            // reported below
        }
        throw bad(spec, key + " must be a positive number, not '" + values.get(key) + "'");
    }

    private static BadInputException bad(String spec, String reason) {
        return new BadInputException("bad synthetic model spec '" + spec + "': " + reason);
    }
}
