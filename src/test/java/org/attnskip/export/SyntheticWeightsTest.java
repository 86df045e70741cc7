package org.attnskip.export;

import org.attnskip.onnx.BadInputException;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SyntheticWeightsTest {
    private static final String SPEC = "layers=4,hidden=64,heads=8,kv_heads=2,ffn=160,vocab=300";

    @Test
    void shapesFollowTheSpec() {
        LlamaWeights w = SyntheticWeights.generate(SPEC + ",seq=128,theta=500000", 1);
        assertEquals(new LlamaConfig(64, 160, 4, 8, 2, 300, 128, 1e-5f, 500000f, null, false, false, 1, 2), w.config);
        assertEquals(300 * 64, w.tokenEmbedding.length);
        assertEquals(300 * 64, w.classifier.length);
        assertEquals(4, w.layers.length);
        LlamaWeights.Layer l = w.layers[3];
        assertEquals(64 * 64, l.wq().length);
        assertEquals(16 * 64, l.wk().length);
        assertEquals(16 * 64, l.wv().length);
        assertEquals(64 * 64, l.wo().length);
        assertEquals(160 * 64, l.w1().length);
        assertEquals(64 * 160, l.w2().length);
        assertEquals(160 * 64, l.w3().length);
        assertEquals(64, l.attnNorm().length);
        assertNull(l.bq());

        LlamaConfig defaults = SyntheticWeights.parse("layers=1,hidden=8,heads=2,ffn=8,vocab=5");
        assertEquals(2, defaults.kvHeads());
        assertEquals(2048, defaults.seqLen());
        assertEquals(10000f, defaults.ropeTheta());
    }

    @Test
    void sameSeedSameWeightsOtherSeedOtherWeights() {
        LlamaWeights a = SyntheticWeights.generate(SPEC, 42);
        LlamaWeights b = SyntheticWeights.generate(SPEC, 42);
        LlamaWeights c = SyntheticWeights.generate(SPEC, 43);
        assertArrayEquals(a.layers[2].w2(), b.layers[2].w2());
        assertArrayEquals(a.classifier, b.classifier);
        assertFalse(java.util.Arrays.equals(a.layers[2].w2(), c.layers[2].w2()));
        // tensors must not repeat each other's stream
        assertFalse(java.util.Arrays.equals(a.layers[0].wq(), a.layers[0].wo()));
    }

    @Test
    void scalesAreOneOverSqrtFanIn() {
        LlamaWeights w = SyntheticWeights.generate(SPEC, 3);
        assertEquals(1 / Math.sqrt(64), std(w.layers[1].wq(), 0), 0.05 / Math.sqrt(64));
        assertEquals(1 / Math.sqrt(160), std(w.layers[1].w2(), 0), 0.05 / Math.sqrt(160));
        assertEquals(1.0, std(w.tokenEmbedding, 0), 0.05);
        assertEquals(1.0, mean(w.layers[0].attnNorm()), 0.05);
        float min = Float.MAX_VALUE;
        for (float g : w.finalNorm) {
            min = Math.min(min, g);
        }
        assertTrue(min > 0.8f, "norm gains stay near 1, min " + min);
    }

    /**
     * One token at position 0 through every layer (attention then returns v unchanged, so this
     * needs no RoPE): logits must be finite and spread, neither collapsed nor exploding.
     */
    @Test
    void forwardPassStaysFiniteAndLogitsAreNotDegenerate() {
        LlamaWeights w = SyntheticWeights.generate(SPEC, 11);
        LlamaConfig c = w.config;
        for (int token : new int[]{1, 57, 299}) {
            float[] x = new float[c.dim()];
            System.arraycopy(w.tokenEmbedding, token * c.dim(), x, 0, c.dim());
            for (LlamaWeights.Layer l : w.layers) {
                float[] v = matVec(l.wv(), rmsNorm(x, l.attnNorm()), c.kvDim());
                float[] attended = new float[c.dim()];
                int group = c.heads() / c.kvHeads();
                for (int h = 0; h < c.heads(); h++) {
                    System.arraycopy(v, (h / group) * c.headDim(), attended, h * c.headDim(), c.headDim());
                }
                add(x, matVec(l.wo(), attended, c.dim()));
                float[] xn = rmsNorm(x, l.ffnNorm());
                float[] gate = matVec(l.w1(), xn, c.hiddenDim());
                float[] up = matVec(l.w3(), xn, c.hiddenDim());
                for (int i = 0; i < gate.length; i++) {
                    gate[i] = (float) (gate[i] / (1 + Math.exp(-gate[i]))) * up[i];
                }
                add(x, matVec(l.w2(), gate, c.dim()));
            }
            float[] logits = matVec(w.classifier, rmsNorm(x, w.finalNorm), c.vocabSize());
            for (float z : logits) {
                assertTrue(Float.isFinite(z));
            }
            double spread = std(logits, mean(logits));
            assertTrue(spread > 0.3 && spread < 5, "logit standard deviation " + spread);
        }
    }

    @Test
    void badSpecsSayWhy() {
        assertBad("layers=2,hidden=64,heads=8,ffn=160,vocab=300,depth=3", "unknown key depth");
        assertBad("layers=2,hidden=60,heads=8,ffn=160,vocab=300", "hidden 60 is not divisible by heads 8");
        assertBad("layers=2,hidden=64,heads=8,kv_heads=3,ffn=160,vocab=300", "heads 8 is not divisible by kv_heads 3");
        assertBad("layers=2,hidden=64,heads=8,ffn=160", "missing key vocab");
        assertBad("layers=2,hidden=64,heads=8,ffn=-1,vocab=300", "ffn must be a positive integer");
        assertBad("layers=2,hidden=64,heads=8,ffn=160,vocab=300,theta=x", "theta must be a positive number");
        assertBad("layers=2,layers=3,hidden=64,heads=8,ffn=160,vocab=300", "key layers is given twice");
        assertBad("layers=2,hidden=24,heads=8,ffn=160,vocab=300", "head size hidden/heads = 3 is odd");
        assertBad("layers2,hidden=64", "'layers2' is not key=value");
    }

    private static void assertBad(String spec, String reason) {
        BadInputException e = assertThrows(BadInputException.class, () -> SyntheticWeights.generate(spec, 0));
        assertTrue(e.getMessage().contains(reason), e.getMessage());
        assertTrue(e.getMessage().startsWith("bad synthetic model spec '" + spec + "'"), e.getMessage());
    }

    private static float[] rmsNorm(float[] x, float[] gain) {
        double ss = 0;
        for (float v : x) {
            ss += v * v;
        }
        float scale = (float) (1 / Math.sqrt(ss / x.length + 1e-5));
        float[] out = new float[x.length];
        for (int i = 0; i < x.length; i++) {
            out[i] = x[i] * scale * gain[i];
        }
        return out;
    }

    private static float[] matVec(float[] w, float[] x, int rows) {
        float[] y = new float[rows];
        for (int r = 0; r < rows; r++) {
            double s = 0;
            for (int c = 0; c < x.length; c++) {
                s += w[r * x.length + c] * x[c];
            }
            y[r] = (float) s;
        }
        return y;
    }

    private static void add(float[] x, float[] delta) {
        for (int i = 0; i < x.length; i++) {
            x[i] += delta[i];
        }
    }

    private static double mean(float[] v) {
        double s = 0;
        for (float x : v) {
            s += x;
        }
        return s / v.length;
    }

    private static double std(float[] v, double mean) {
        double s = 0;
        for (float x : v) {
            s += (x - mean) * (x - mean);
        }
        return Math.sqrt(s / v.length);
    }
}
