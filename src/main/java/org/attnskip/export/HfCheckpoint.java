package org.attnskip.export;

import java.nio.file.Path;
import java.util.function.IntUnaryOperator;

/**
 * Reads a Hugging Face checkpoint folder of LlamaForCausalLM, MistralForCausalLM or
 * Qwen2ForCausalLM ({@code config.json} plus safetensors, single or sharded) into
 * {@link LlamaWeights} or hands out its tensors to stream, permuting q/k rows into the interleaved rotary
 * convention.
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
        public WeightRows weight(WeightPart part, int i) {
            long dim = c.dim();
            long kvDim = c.kvDim();
            long hidden = c.hiddenDim();
            String p = "model.layers." + i + ".";
            return switch (part) {
                case EMBEDDING -> tensors.rows("model.embed_tokens.weight", null, c.vocabSize(), dim);
                case CLASSIFIER -> tensors.rows("lm_head.weight", null, c.vocabSize(), dim);
                case FINAL_NORM -> tensors.rows("model.norm.weight", null, dim);
                case ATTN_NORM -> tensors.rows(p + "input_layernorm.weight", null, dim);
                case FFN_NORM -> tensors.rows(p + "post_attention_layernorm.weight", null, dim);
                case WQ -> tensors.rows(p + "self_attn.q_proj.weight", interleaved(), dim, dim);
                case WK -> tensors.rows(p + "self_attn.k_proj.weight", interleaved(), kvDim, dim);
                case WV -> tensors.rows(p + "self_attn.v_proj.weight", null, kvDim, dim);
                case WO -> tensors.rows(p + "self_attn.o_proj.weight", null, dim, dim);
                case BQ -> WeightRows.of(queryKeyRows(tensors.read(p + "self_attn.q_proj.bias", dim), c.heads(), 1));
                case BK -> WeightRows.of(queryKeyRows(tensors.read(p + "self_attn.k_proj.bias", kvDim), c.kvHeads(), 1));
                case BV -> tensors.rows(p + "self_attn.v_proj.bias", null, kvDim);
                case W1 -> tensors.rows(p + "mlp.gate_proj.weight", null, hidden, dim);
                case W2 -> tensors.rows(p + "mlp.down_proj.weight", null, dim, hidden);
                case W3 -> tensors.rows(p + "mlp.up_proj.weight", null, hidden, dim);
            };
        }

        /** Tied checkpoints may still carry lm_head.weight; HF ignores it then, and so do we. */
        @Override
        public boolean classifierIsEmbedding() {
            return c.sharedClassifier();
        }

        @Override
        public void close() {
            tensors.close();
        }

        private float[] queryKeyRows(float[] rows, int heads, int cols) {
            return RotaryLayout.halvesToInterleaved(rows, heads, c.headDim(), cols);
        }

        /** q/k rows read in the interleaved rotary order, each from where HF's halves order stores it. */
        private IntUnaryOperator interleaved() {
            int headDim = c.headDim();
            return row -> RotaryLayout.storedHalvesRow(row, headDim);
        }
    }
}
