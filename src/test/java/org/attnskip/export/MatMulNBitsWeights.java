package org.attnskip.export;

import ai.onnx.proto.OnnxMl.ModelProto;
import ai.onnx.proto.OnnxMl.NodeProto;
import ai.onnx.proto.OnnxMl.TensorProto;
import org.attnskip.onnx.Attributes;
import org.attnskip.onnx.Graph;
import org.attnskip.onnx.Tensors;

import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;

/**
 * The weights an int4/int8 export computes with, read back from its MatMulNBits initializers as
 * ONNX Runtime's contrib operator spec defines them: B uint8 [N, blocks, blob] with codes packed
 * low bits first along K, scales [N * blocks], zero points uint8 packed the same way per row
 * (default 2^(bits-1)), and w[n][k] = (code - zero point) * scale. The reference implementation
 * run on these weights is what the quantized graph must compute.
 */
public final class MatMulNBitsWeights {
    private MatMulNBitsWeights() {
    }

    /** {@code w} with every matrix the graph quantized replaced by its dequantised values. */
    public static LlamaWeights of(LlamaWeights w, ModelProto model) {
        Map<String, float[]> m = decodeAll(model);
        LlamaConfig c = w.config;
        int d = c.dim(), kv = c.kvDim();
        LlamaWeights.Layer[] layers = new LlamaWeights.Layer[w.layers.length];
        for (int i = 0; i < layers.length; i++) {
            LlamaWeights.Layer l = w.layers[i];
            String p = "model.layers." + i + ".";
            float[] wq, wk, wv, wo;
            float[] qkv = m.get(p + "attn.qkv_proj.weight");
            if (qkv != null) {
                wq = Arrays.copyOfRange(qkv, 0, d * d);
                wk = Arrays.copyOfRange(qkv, d * d, (d + kv) * d);
                wv = Arrays.copyOfRange(qkv, (d + kv) * d, (d + 2 * kv) * d);
                wo = need(m, p + "attn.o_proj.weight");
            } else {
                wq = need(m, p + "self_attn.q_proj.weight");
                wk = need(m, p + "self_attn.k_proj.weight");
                wv = need(m, p + "self_attn.v_proj.weight");
                wo = need(m, p + "self_attn.o_proj.weight");
            }
            layers[i] = new LlamaWeights.Layer(l.attnNorm(), wq, wk, wv, wo, l.bq(), l.bk(), l.bv(), l.ffnNorm(),
                    need(m, p + "mlp.gate_proj.weight"), need(m, p + "mlp.down_proj.weight"), need(m, p + "mlp.up_proj.weight"));
        }
        float[] classifier = w.classifierIsEmbedding() ? w.tokenEmbedding : need(m, "lm_head.weight");
        return new LlamaWeights(c, w.tokenEmbedding, layers, w.finalNorm, classifier);
    }

    private static float[] need(Map<String, float[]> m, String name) {
        float[] v = m.get(name);
        if (v == null) {
            throw new IllegalStateException("no MatMulNBits weight " + name + " in " + m.keySet());
        }
        return v;
    }

    /** Every MatMulNBits weight, [N][K], by the name of its B input less the _Q4/_Q8 suffix. */
    private static Map<String, float[]> decodeAll(ModelProto model) {
        Graph g = new Graph(model);
        Map<String, float[]> out = new HashMap<>();
        for (NodeProto n : g.nodes()) {
            if (!n.getOpType().equals("MatMulNBits")) {
                continue;
            }
            int k = (int) Attributes.intOf(n, "K", 0);
            int nOut = (int) Attributes.intOf(n, "N", 0);
            int bits = (int) Attributes.intOf(n, "bits", 4);
            int blockSize = (int) Attributes.intOf(n, "block_size", 0);
            byte[] b = bytes(g.initializer(n.getInput(1)).get());
            float[] scales = Tensors.floats(g.initializer(n.getInput(2)).get(), null);
            byte[] zp = n.getInputCount() > 3 && !n.getInput(3).isEmpty() ? bytes(g.initializer(n.getInput(3)).get()) : null;
            int blocks = (k + blockSize - 1) / blockSize;
            int blob = blockSize * bits / 8;
            int zpRow = (blocks * bits + 7) / 8;
            float[] w = new float[nOut * k];
            for (int row = 0; row < nOut; row++) {
                for (int col = 0; col < k; col++) {
                    int blk = col / blockSize;
                    int code = code(b, (row * blocks + blk) * blob, col % blockSize, bits);
                    int zero = zp == null ? 1 << (bits - 1) : code(zp, row * zpRow, blk, bits);
                    w[row * k + col] = (code - zero) * scales[row * blocks + blk];
                }
            }
            out.put(n.getInput(1).replaceAll("_Q[0-9]+$", ""), w);
        }
        return out;
    }

    private static int code(byte[] bytes, int base, int index, int bits) {
        int perByte = 8 / bits;
        int v = bytes[base + index / perByte] & 0xFF;
        return (v >> ((index % perByte) * bits)) & ((1 << bits) - 1);
    }

    private static byte[] bytes(TensorProto t) {
        return t.getRawData().toByteArray();
    }
}
