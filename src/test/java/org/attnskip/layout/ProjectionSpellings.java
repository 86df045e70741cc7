package org.attnskip.layout;

import ai.onnx.proto.OnnxMl.ModelProto;
import ai.onnx.proto.OnnxMl.NodeProto;
import ai.onnx.proto.OnnxMl.TensorProto;
import ai.onnx.proto.OnnxMl.TensorProto.DataType;
import com.google.protobuf.ByteString;
import org.attnskip.export.LlamaWeights;
import org.attnskip.onnx.Attributes;
import org.attnskip.onnx.Graph;
import org.attnskip.onnx.Tensors;

import java.util.List;

/**
 * Test graphs for the ways exporters spell a projection's weight, made from an fp32 graph of
 * attnskip's exporter by rewriting every MatMul against a stored [in][out] matrix:
 * <ul>
 *   <li>{@link Spelling#TRANSPOSED}: the weight stored [out][in] and Transposed (torch.onnx at opset 23+);</li>
 *   <li>{@link Spelling#RESHAPED}: the weight stored flat and Reshaped to [in, out];</li>
 *   <li>{@link Spelling#QDQ}: int8 codes, symmetric per output column, through DequantizeLinear (axis 1).</li>
 * </ul>
 * The int8 rounding is {@link #int8PerOutput}, so the reference implementation can be run on the
 * same dequantised weights ({@link #qdqReference}).
 */
public final class ProjectionSpellings {
    public enum Spelling { TRANSPOSED, RESHAPED, QDQ }

    private ProjectionSpellings() {
    }

    public static ModelProto respell(ModelProto model, Spelling spelling) {
        Graph g = new Graph(model);
        for (NodeProto mm : List.copyOf(g.nodes())) {
            if (!mm.getOpType().equals("MatMul") || !g.isInitializer(mm.getInput(1))) {
                continue;
            }
            TensorProto w = g.initializer(mm.getInput(1)).get();
            if (w.getDimsCount() != 2 || w.getDataType() != DataType.FLOAT_VALUE) {
                continue;
            }
            int in = (int) w.getDims(0);
            int out = (int) w.getDims(1);
            float[] inOut = Tensors.floats(w, null);
            float[] outIn = transpose(inOut, in, out);
            String name = w.getName();
            String stored = name + "." + spelling.name().toLowerCase();
            NodeProto producer = switch (spelling) {
                case TRANSPOSED -> {
                    g.addInitializer(Tensors.floatTensor(stored, new long[] {out, in}, outIn));
                    yield node("Transpose", stored + "/Transpose", List.of(stored), name + ".weight_in_out")
                            .toBuilder().addAttribute(Attributes.intsAttr("perm", 1, 0)).build();
                }
                case RESHAPED -> {
                    g.addInitializer(Tensors.floatTensor(stored, new long[] {(long) in * out}, inOut));
                    g.addInitializer(Tensors.longVector(stored + ".shape", in, out));
                    yield node("Reshape", stored + "/Reshape", List.of(stored, stored + ".shape"), name + ".weight_in_out");
                }
                case QDQ -> {
                    Int8 q = int8PerOutput(outIn, out, in);
                    byte[] codesInOut = new byte[in * out];
                    for (int o = 0; o < out; o++) {
                        for (int i = 0; i < in; i++) {
                            codesInOut[i * out + o] = q.codes()[o * in + i];
                        }
                    }
                    g.addInitializer(TensorProto.newBuilder().setName(stored).setDataType(DataType.INT8_VALUE)
                            .addDims(in).addDims(out).setRawData(ByteString.copyFrom(codesInOut)).build());
                    g.addInitializer(Tensors.floatTensor(stored + ".scale", new long[] {out}, q.scales()));
                    yield node("DequantizeLinear", stored + "/DequantizeLinear", List.of(stored, stored + ".scale"),
                            name + ".weight_in_out").toBuilder().addAttribute(Attributes.intAttr("axis", 1)).build();
                }
            };
            g.add(producer);
            g.renameInput(mm, name, producer.getOutput(0));
        }
        g.cleanup();
        g.toposort();
        return g.toModel();
    }

    /** Symmetric int8 codes of W [out][in], one scale per output row: scale = max |w| / 127, code = round(w / scale). */
    public record Int8(byte[] codes, float[] scales) {
    }

    public static Int8 int8PerOutput(float[] outIn, int out, int in) {
        byte[] codes = new byte[out * in];
        float[] scales = new float[out];
        for (int o = 0; o < out; o++) {
            float max = 0;
            for (int i = 0; i < in; i++) {
                max = Math.max(max, Math.abs(outIn[o * in + i]));
            }
            scales[o] = max > 0 ? max / 127f : 1f;
            for (int i = 0; i < in; i++) {
                codes[o * in + i] = (byte) Math.max(-127, Math.min(127, Math.round(outIn[o * in + i] / scales[o])));
            }
        }
        return new Int8(codes, scales);
    }

    /** The weights a QDQ graph computes with: every projection matrix replaced by code * scale. */
    public static LlamaWeights qdqReference(LlamaWeights w) {
        return mapMatrices(w, (m, dims) -> {
            Int8 q = int8PerOutput(m, dims[0], dims[1]);
            float[] r = new float[m.length];
            for (int o = 0; o < dims[0]; o++) {
                for (int i = 0; i < dims[1]; i++) {
                    r[o * dims[1] + i] = q.codes()[o * dims[1] + i] * q.scales()[o];
                }
            }
            return r;
        });
    }

    /** A matrix [out][in] and its dims {out, in} to the matrix to use instead. */
    public interface MatrixMap {
        float[] apply(float[] outIn, int[] dims);
    }

    /** The weights with every projection matrix (and a separate classifier) mapped; norms and embedding kept. */
    public static LlamaWeights mapMatrices(LlamaWeights w, MatrixMap f) {
        var c = w.config;
        int d = c.dim(), kv = c.kvDim(), hid = c.hiddenDim();
        LlamaWeights.Layer[] layers = new LlamaWeights.Layer[w.layers.length];
        for (int i = 0; i < layers.length; i++) {
            LlamaWeights.Layer l = w.layers[i];
            layers[i] = new LlamaWeights.Layer(l.attnNorm(), f.apply(l.wq(), new int[] {d, d}),
                    f.apply(l.wk(), new int[] {kv, d}), f.apply(l.wv(), new int[] {kv, d}), f.apply(l.wo(), new int[] {d, d}),
                    l.bq(), l.bk(), l.bv(), l.ffnNorm(), f.apply(l.w1(), new int[] {hid, d}),
                    f.apply(l.w2(), new int[] {d, hid}), f.apply(l.w3(), new int[] {hid, d}));
        }
        float[] classifier = w.classifierIsEmbedding() ? w.tokenEmbedding
                : f.apply(w.classifier, new int[] {c.vocabSize(), d});
        return new LlamaWeights(c, w.tokenEmbedding, layers, w.finalNorm, classifier);
    }

    private static float[] transpose(float[] rowsCols, int rows, int cols) {
        float[] t = new float[rows * cols];
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < cols; c++) {
                t[c * rows + r] = rowsCols[r * cols + c];
            }
        }
        return t;
    }

    private static NodeProto node(String op, String name, List<String> inputs, String output) {
        return NodeProto.newBuilder().setOpType(op).setName(name).addAllInput(inputs).addOutput(output).build();
    }
}
