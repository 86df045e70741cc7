package org.attnskip.rewrite;

import ai.onnx.proto.OnnxMl.TensorProto;
import org.attnskip.export.LlamaConfig;
import org.attnskip.export.LlamaWeights;
import org.attnskip.onnx.LoadedModel;
import org.attnskip.onnx.Tensors;

/**
 * Test-only: the weights of a Llama graph written by ONNX Runtime GenAI's model builder (its
 * initializer names, MatMul weights stored [in][out], RotaryEmbedding rotating halves), read into
 * {@link LlamaWeights} for the reference implementation: matrices transposed to [out][in], and the
 * q and k rows of each head reordered so that the halves (j, j + d/2) become the adjacent pairs
 * (2j, 2j + 1) the reference rotates. The same reordering of q and k leaves every q.k unchanged.
 */
final class OrtGenAiLlamaWeights {
    private OrtGenAiLlamaWeights() {
    }

    static LlamaWeights read(LoadedModel model, int layers, int heads, int kvHeads, float eps, float theta) {
        var g = model.graph();
        float[] embedding = floats(model, "model.embed_tokens.weight");
        int vocab = g.initializer("model.embed_tokens.weight").orElseThrow().getDims(0) > 0
                ? (int) g.initializer("model.embed_tokens.weight").orElseThrow().getDims(0) : 0;
        int dim = embedding.length / vocab;
        int hidden = (int) g.initializer("model.layers.0.mlp.gate_proj.MatMul.weight").orElseThrow().getDims(1);
        int headDim = dim / heads;
        int kvDim = kvHeads * headDim;
        LlamaWeights.Layer[] ls = new LlamaWeights.Layer[layers];
        for (int l = 0; l < layers; l++) {
            String p = "model.layers." + l + ".";
            ls[l] = new LlamaWeights.Layer(
                    floats(model, p + "input_layernorm.weight"),
                    halvesToPairs(transpose(floats(model, p + "attn.q_proj.MatMul.weight"), dim, dim), dim, dim, headDim),
                    halvesToPairs(transpose(floats(model, p + "attn.k_proj.MatMul.weight"), dim, kvDim), kvDim, dim, headDim),
                    transpose(floats(model, p + "attn.v_proj.MatMul.weight"), dim, kvDim),
                    transpose(floats(model, p + "attn.o_proj.MatMul.weight"), dim, dim),
                    null, null, null,
                    floats(model, p + "post_attention_layernorm.weight"),
                    transpose(floats(model, p + "mlp.gate_proj.MatMul.weight"), dim, hidden),
                    transpose(floats(model, p + "mlp.down_proj.MatMul.weight"), hidden, dim),
                    transpose(floats(model, p + "mlp.up_proj.MatMul.weight"), dim, hidden));
        }
        float[] finalNorm = floats(model, "model.layers." + layers + ".final_norm_layernorm.weight");
        float[] classifier = transpose(floats(model, "lm_head.MatMul.weight"), dim, vocab);
        LlamaConfig c = new LlamaConfig(dim, hidden, layers, heads, kvHeads, vocab, 2048, eps, theta, null, false, false, 0, 1);
        return new LlamaWeights(c, embedding, ls, finalNorm, classifier);
    }

    private static float[] floats(LoadedModel model, String name) {
        TensorProto t = model.graph().initializer(name).orElseThrow(() -> new AssertionError("no initializer " + name));
        return Tensors.floats(t, model.baseDir());
    }

    /** [in][out] -> [out][in]. */
    private static float[] transpose(float[] inOut, int in, int out) {
        float[] t = new float[inOut.length];
        for (int i = 0; i < in; i++) {
            for (int o = 0; o < out; o++) {
                t[o * in + i] = inOut[i * out + o];
            }
        }
        return t;
    }

    /** Rows [out][in] of each head: row j -> 2j and row j + d/2 -> 2j + 1. */
    private static float[] halvesToPairs(float[] rows, int out, int in, int headDim) {
        float[] r = new float[rows.length];
        for (int h = 0; h < out / headDim; h++) {
            for (int j = 0; j < headDim / 2; j++) {
                System.arraycopy(rows, (h * headDim + j) * in, r, (h * headDim + 2 * j) * in, in);
                System.arraycopy(rows, (h * headDim + j + headDim / 2) * in, r, (h * headDim + 2 * j + 1) * in, in);
            }
        }
        return r;
    }
}
