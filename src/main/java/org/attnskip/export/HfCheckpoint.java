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
        return LlamaWeights.load(open(dir));
    }

    /** The checkpoint's tensors, each read and converted to fp32 when asked for. Close it when done. */
    public static LlamaWeightSource open(Path dir) {
        LlamaConfig c = HfConfig.read(dir).config();
        return new Source(c, SafetensorsShards.open(dir));
    }

    private static final class Source implements LlamaWeightSource {
        private final LlamaConfig c;
        private final SafetensorsShards tensors;

        Source(LlamaConfig c, SafetensorsShards tensors) {
            this.c = c;
            this.tensors = tensors;
        }

        @Override
        public LlamaConfig config() {
            return c;
        }

        @Override
        public float[] tokenEmbedding() {
            return tensors.read("model.embed_tokens.weight", c.vocabSize(), c.dim());
        }

        @Override
        public LlamaWeights.Layer layer(int i) {
            long dim = c.dim();
            long kvDim = c.kvDim();
            long hidden = c.hiddenDim();
            String p = "model.layers." + i + ".";
            float[] wq = tensors.read(p + "self_attn.q_proj.weight", dim, dim);
            float[] wk = tensors.read(p + "self_attn.k_proj.weight", kvDim, dim);
            float[] bq = null;
            float[] bk = null;
            float[] bv = null;
            if (c.qkvBias()) {
                bq = queryKeyRows(tensors.read(p + "self_attn.q_proj.bias", dim), c.heads(), 1);
                bk = queryKeyRows(tensors.read(p + "self_attn.k_proj.bias", kvDim), c.kvHeads(), 1);
                bv = tensors.read(p + "self_attn.v_proj.bias", kvDim);
            }
            return new LlamaWeights.Layer(
                    tensors.read(p + "input_layernorm.weight", dim),
                    queryKeyRows(wq, c.heads(), c.dim()),
                    queryKeyRows(wk, c.kvHeads(), c.dim()),
                    tensors.read(p + "self_attn.v_proj.weight", kvDim, dim),
                    tensors.read(p + "self_attn.o_proj.weight", dim, dim),
                    bq, bk, bv,
                    tensors.read(p + "post_attention_layernorm.weight", dim),
                    tensors.read(p + "mlp.gate_proj.weight", hidden, dim),
                    tensors.read(p + "mlp.down_proj.weight", dim, hidden),
                    tensors.read(p + "mlp.up_proj.weight", hidden, dim));
        }

        @Override
        public float[] finalNorm() {
            return tensors.read("model.norm.weight", c.dim());
        }

        /** Tied checkpoints may still carry lm_head.weight; HF ignores it then, and so do we. */
        @Override
        public boolean classifierIsEmbedding() {
            return c.sharedClassifier();
        }

        @Override
        public float[] classifier() {
            return tensors.read("lm_head.weight", c.vocabSize(), c.dim());
        }

        @Override
        public void close() {
            tensors.close();
        }

        private float[] queryKeyRows(float[] rows, int heads, int cols) {
            return RotaryLayout.halvesToInterleaved(rows, heads, c.headDim(), cols);
        }
    }
}
