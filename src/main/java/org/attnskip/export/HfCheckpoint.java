package org.attnskip.export;

import java.nio.file.Path;

/**
 * Reads a Hugging Face checkpoint folder of LlamaForCausalLM, MistralForCausalLM or
 * Qwen2ForCausalLM ({@code config.json} plus safetensors, single or sharded) into
 * {@link LlamaWeights}, permuting q/k rows into the interleaved rotary convention.
 */
public final class HfCheckpoint {
    private HfCheckpoint() {
    }

    public static LlamaWeights read(Path dir) {
        LlamaConfig c = HfConfig.read(dir).config();
        try (SafetensorsShards tensors = SafetensorsShards.open(dir)) {
            long dim = c.dim();
            long kvDim = c.kvDim();
            long hidden = c.hiddenDim();
            float[] embedding = tensors.read("model.embed_tokens.weight", c.vocabSize(), dim);
            LlamaWeights.Layer[] layers = new LlamaWeights.Layer[c.layers()];
            for (int i = 0; i < layers.length; i++) {
                String p = "model.layers." + i + ".";
                float[] wq = tensors.read(p + "self_attn.q_proj.weight", dim, dim);
                float[] wk = tensors.read(p + "self_attn.k_proj.weight", kvDim, dim);
                float[] bq = null;
                float[] bk = null;
                float[] bv = null;
                if (c.qkvBias()) {
                    bq = queryKeyRows(tensors.read(p + "self_attn.q_proj.bias", dim), c.heads(), c, 1);
                    bk = queryKeyRows(tensors.read(p + "self_attn.k_proj.bias", kvDim), c.kvHeads(), c, 1);
                    bv = tensors.read(p + "self_attn.v_proj.bias", kvDim);
                }
                layers[i] = new LlamaWeights.Layer(
                        tensors.read(p + "input_layernorm.weight", dim),
                        queryKeyRows(wq, c.heads(), c, c.dim()),
                        queryKeyRows(wk, c.kvHeads(), c, c.dim()),
                        tensors.read(p + "self_attn.v_proj.weight", kvDim, dim),
                        tensors.read(p + "self_attn.o_proj.weight", dim, dim),
                        bq, bk, bv,
                        tensors.read(p + "post_attention_layernorm.weight", dim),
                        tensors.read(p + "mlp.gate_proj.weight", hidden, dim),
                        tensors.read(p + "mlp.down_proj.weight", dim, hidden),
                        tensors.read(p + "mlp.up_proj.weight", hidden, dim));
            }
            float[] finalNorm = tensors.read("model.norm.weight", dim);
            // tied checkpoints may still carry lm_head.weight; HF ignores it then, and so do we
            float[] classifier = c.sharedClassifier()
                    ? embedding
                    : tensors.read("lm_head.weight", c.vocabSize(), dim);
            return new LlamaWeights(c, embedding, layers, finalNorm, classifier);
        }
    }

    private static float[] queryKeyRows(float[] rows, int heads, LlamaConfig c, int cols) {
        return RotaryLayout.halvesToInterleaved(rows, heads, c.headDim(), cols);
    }
}
