package org.attnskip.export;

import ai.onnx.proto.OnnxMl.GraphProto;
import ai.onnx.proto.OnnxMl.ModelProto;
import ai.onnx.proto.OnnxMl.NodeProto;
import ai.onnx.proto.OnnxMl.TensorProto;
import ai.onnx.proto.OnnxMl.TensorProto.DataType;
import org.attnskip.onnx.BadInputException;
import org.attnskip.onnx.ExternalData;
import org.attnskip.onnx.ExternalDataWriter;
import org.attnskip.onnx.LoadedModel;
import org.attnskip.onnx.OnnxModelIO;
import org.attnskip.onnx.Tensors;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.IntFunction;
import java.util.stream.Collectors;

/**
 * Reads {@link LlamaWeights} back from a model directory that {@code attnskip export} wrote: the
 * inverse of {@link LlamaOnnxExporter}. Weights are found by the exporter's initializer names,
 * widened from fp16 when the export was fp16, and the [in][out] MatMul matrices are transposed back
 * to [out][in]; the shape, rope and norm settings come from {@code attnskip.json}.
 * <p>
 * The inverse is only valid for the exporter's own graph, so the weights are exported again and the
 * result must equal the file's graph (nodes, inputs, outputs and every initializer). A graph that
 * was rewritten since (optimize) or whose manifest disagrees with it is refused with
 * {@link NotExporterGraph}.
 */
public final class ExportedWeights {

    /** The directory's model.onnx is not what the exporter writes for its attnskip.json. */
    public static final class NotExporterGraph extends BadInputException {
        NotExporterGraph(String message) {
            super(message);
        }
    }

    /**
     * The weights would not fit the Java heap: {@link #read} reads them into it in fp32 and checks
     * them by exporting them again in memory; {@link #open} reads them where they lie instead.
     */
    public static final class TooLargeForHeap extends BadInputException {
        TooLargeForHeap(String message) {
            super(message);
        }
    }

    private final Map<String, TensorProto> initializers = new HashMap<>();
    private final LoadedModel model;

    private ExportedWeights(LoadedModel model) {
        for (TensorProto t : model.proto().getGraph().getInitializerList()) {
            initializers.put(t.getName(), t);
        }
        this.model = model;
    }

    public static LlamaWeights read(ModelDirectory dir) {
        return read(dir, Runtime.getRuntime().maxMemory());
    }

    /** As above, refusing with {@link TooLargeForHeap} before reading when the weights need more than {@code maxHeap}. */
    static LlamaWeights read(ModelDirectory dir, long maxHeap) {
        ModelManifest manifest = dir.manifest();
        ExportDtype dtype = ExportDtype.parse(manifest.dtype() == null ? ExportDtype.FLOAT.cliName() : manifest.dtype());
        long need = ExportBudget.of(manifest.config(), ExportDtype.FLOAT).dataBytes()
                + ExportBudget.of(manifest.config(), dtype).dataBytes() + ExportBudget.SLACK_BYTES;
        if (need > maxHeap) {
            throw new TooLargeForHeap("the reference implementation reads the weights into the Java heap in fp32 and "
                    + "checks them by exporting them again: about " + ExportBudget.gb(need) + ", and the JVM has "
                    + ExportBudget.gb(maxHeap) + " (raise it with ATTNSKIP_JAVA_OPTS=-Xmx" + (need / (1L << 30) + 1) + "g)");
        }
        LoadedModel model = OnnxModelIO.load(dir.modelFile());
        ExportedWeights reader = new ExportedWeights(model);
        if (GraphFlavour.FUSED.cliName().equals(manifest.graph())) {
            LlamaWeights weights = reader.fusedWeights(manifest.config());
            reader.requireSameGraph(FusedLlamaExporter.export(weights, dtype));
            return weights;
        }
        LlamaWeights weights = reader.weights(manifest.config());
        reader.requireSameGraph(LlamaOnnxExporter.export(weights, dtype));
        return weights;
    }

    /**
     * The weights where they lie, memory-mapped a window at a time ({@link ExportedWeightSource}):
     * the Java heap holds a few row blocks whatever the model's size. The graph is checked against
     * what the exporter writes for the manifest, as {@link #read} does, on its structure (nodes,
     * inputs, outputs, every initializer's name, type and dims) and the values of its constants; the
     * weights' values are the file's own. Close the source when done.
     */
    public static LlamaWeightSource open(ModelDirectory dir) {
        ModelManifest manifest = dir.manifest();
        ExportDtype dtype = ExportDtype.parse(manifest.dtype() == null ? ExportDtype.FLOAT.cliName() : manifest.dtype());
        LoadedModel model = OnnxModelIO.load(dir.modelFile());
        ExportedWeights reader = new ExportedWeights(model);
        if (dtype.weightBits() > 0) {
            throw reader.refusal("its projections are " + dtype.cliName() + " MatMulNBits; the reference implementation "
                    + "reads fp32 and fp16 exports");
        }
        boolean fused = GraphFlavour.FUSED.cliName().equals(manifest.graph());
        ExportedWeightSource source = new ExportedWeightSource(model, manifest.config(), fused);
        try {
            // large tensors are only laid out, never read: the comparison costs the graph, not the weights
            ExternalDataWriter layout = ExternalDataWriter.layoutOnly(ModelDirectory.MODEL_FILE + ".data");
            ModelProto exported;
            try {
                exported = fused ? FusedLlamaExporter.export(source, dtype, layout) : LlamaOnnxExporter.export(source, dtype, layout);
            } catch (NotExporterGraph e) {
                throw reader.refusal(e.getMessage());
            }
            reader.requireSameStructure(exported);
            return source;
        } catch (RuntimeException e) {
            source.close();
            throw e;
        }
    }

    /** The inverse of {@link FusedLlamaExporter}: the packed q|k|v projection is split back into its row blocks. */
    private LlamaWeights fusedWeights(LlamaConfig c) {
        int d = c.dim(), kv = c.kvDim(), hid = c.hiddenDim();
        return assemble(c, i -> {
            String p = "model.layers." + i + ".";
            float[] qkv = matrix(p + "attn.qkv_proj.weight", d + 2 * kv, d);
            float[] bias = optional(p + "attn.qkv_proj.bias", d + 2 * kv);
            return new LlamaWeights.Layer(
                    values(p + "input_layernorm.weight", d),
                    Arrays.copyOfRange(qkv, 0, d * d),
                    Arrays.copyOfRange(qkv, d * d, (d + kv) * d),
                    Arrays.copyOfRange(qkv, (d + kv) * d, (d + 2 * kv) * d),
                    matrix(p + "attn.o_proj.weight", d, d),
                    bias == null ? null : Arrays.copyOfRange(bias, 0, d),
                    bias == null ? null : Arrays.copyOfRange(bias, d, d + kv),
                    bias == null ? null : Arrays.copyOfRange(bias, d + kv, d + 2 * kv),
                    values(p + "post_attention_layernorm.weight", d),
                    matrix(p + "mlp.gate_proj.weight", hid, d),
                    matrix(p + "mlp.down_proj.weight", d, hid),
                    matrix(p + "mlp.up_proj.weight", hid, d));
        });
    }

    private LlamaWeights weights(LlamaConfig c) {
        int d = c.dim(), kv = c.kvDim(), hid = c.hiddenDim();
        return assemble(c, i -> {
            String p = "model.layers." + i + ".";
            return new LlamaWeights.Layer(
                    values(p + "input_layernorm.weight", d),
                    matrix(p + "self_attn.q_proj.weight", d, d),
                    matrix(p + "self_attn.k_proj.weight", kv, d),
                    matrix(p + "self_attn.v_proj.weight", kv, d),
                    matrix(p + "self_attn.o_proj.weight", d, d),
                    optional(p + "self_attn.q_proj.bias", d),
                    optional(p + "self_attn.k_proj.bias", kv),
                    optional(p + "self_attn.v_proj.bias", kv),
                    values(p + "post_attention_layernorm.weight", d),
                    matrix(p + "mlp.gate_proj.weight", hid, d),
                    matrix(p + "mlp.down_proj.weight", d, hid),
                    matrix(p + "mlp.up_proj.weight", hid, d));
        });
    }

    /** The parts both graph flavours store alike (embedding, final norm, classifier) around the per-layer weights. */
    private LlamaWeights assemble(LlamaConfig c, IntFunction<LlamaWeights.Layer> layer) {
        float[] embedding = values("model.embed_tokens.weight", c.vocabSize(), c.dim());
        LlamaWeights.Layer[] layers = new LlamaWeights.Layer[c.layers()];
        for (int i = 0; i < layers.length; i++) {
            layers[i] = layer.apply(i);
        }
        float[] finalNorm = values("model.norm.weight", c.dim());
        // The exporter stores a shared classifier once (as the embedding) and a separate one as lm_head.
        float[] classifier = initializers.containsKey("lm_head.weight")
                ? matrix("lm_head.weight", c.vocabSize(), c.dim()) : embedding;
        return new LlamaWeights(c, embedding, layers, finalNorm, classifier);
    }

    /** A matrix the exporter stored transposed, [in][out], returned [out][in]. */
    private float[] matrix(String name, int out, int in) {
        float[] inOut = values(name, in, out);
        float[] outIn = new float[inOut.length];
        for (int i = 0; i < in; i++) {
            for (int o = 0; o < out; o++) {
                outIn[o * in + i] = inOut[i * out + o];
            }
        }
        return outIn;
    }

    private float[] optional(String name, int size) {
        return initializers.containsKey(name) ? values(name, size) : null;
    }

    private float[] values(String name, long... dims) {
        TensorProto t = initializers.get(name);
        if (t == null) {
            throw refusal("it has no initializer '" + name + "'");
        }
        if (!Arrays.equals(t.getDimsList().stream().mapToLong(Long::longValue).toArray(), dims)) {
            throw refusal("initializer '" + name + "' has dims " + t.getDimsList() + ", the manifest implies "
                    + Arrays.toString(dims));
        }
        return Tensors.floats(t, model.baseDir());
    }

    /** The first difference in nodes, inputs or outputs between the file and the exporter's graph, else null. */
    private String firstWiringDifference(GraphProto want) {
        GraphProto have = model.proto().getGraph();
        String difference = firstNodeDifference(have.getNodeList(), want.getNodeList());
        if (difference == null && !have.getInputList().equals(want.getInputList())) {
            difference = "its inputs differ";
        }
        if (difference == null && !have.getOutputList().equals(want.getOutputList())) {
            difference = "its outputs differ";
        }
        return difference;
    }

    /** The file must be exactly what the exporter writes from the weights read; else the weights mean something else. */
    private void requireSameGraph(ModelProto exported) {
        GraphProto want = exported.getGraph();
        String difference = firstWiringDifference(want);
        if (difference == null) {
            difference = firstInitializerDifference(want.getInitializerList());
        }
        if (difference != null) {
            throw refusal(difference);
        }
    }

    /**
     * As {@link #requireSameGraph}, for a graph built with its weights laid out but not written:
     * values are compared for the initializers it holds inline (constants, small tensors).
     */
    private void requireSameStructure(ModelProto exported) {
        GraphProto want = exported.getGraph();
        String difference = firstWiringDifference(want);
        if (difference == null && initializers.size() != want.getInitializerCount()) {
            difference = "it has " + initializers.size() + " initializers, the exporter's graph " + want.getInitializerCount();
        }
        for (int i = 0; difference == null && i < want.getInitializerCount(); i++) {
            TensorProto w = want.getInitializer(i);
            TensorProto h = initializers.get(w.getName());
            if (h == null) {
                difference = "initializer '" + w.getName() + "' is missing";
            } else if (h.getDataType() != w.getDataType() || !h.getDimsList().equals(w.getDimsList())
                    || (!ExternalData.isExternal(w) && !sameValues(h, model.baseDir(), w))) {
                difference = "initializer '" + w.getName() + "' differs";
            }
        }
        if (difference != null) {
            throw refusal(difference);
        }
    }

    private NotExporterGraph refusal(String difference) {
        return new NotExporterGraph(model.file() + " is not the graph attnskip export writes for its "
                + ModelDirectory.MANIFEST_FILE + " (" + difference + ")" + rewriteHint(model.proto())
                + "; use the directory that export wrote");
    }

    private static String firstNodeDifference(List<NodeProto> have, List<NodeProto> want) {
        for (int i = 0; i < Math.min(have.size(), want.size()); i++) {
            if (!have.get(i).equals(want.get(i))) {
                return "node " + i + " is " + have.get(i).getOpType() + " '" + have.get(i).getName() + "', the exporter's is "
                        + want.get(i).getOpType() + " '" + want.get(i).getName() + "'";
            }
        }
        return have.size() == want.size() ? null
                : "it has " + have.size() + " nodes, the exporter's graph " + want.size();
    }

    private String firstInitializerDifference(List<TensorProto> want) {
        if (initializers.size() != want.size()) {
            return "it has " + initializers.size() + " initializers, the exporter's graph " + want.size();
        }
        for (TensorProto w : want) {
            TensorProto h = initializers.get(w.getName());
            if (h == null) {
                return "initializer '" + w.getName() + "' is missing";
            }
            if (h.getDataType() != w.getDataType() || !h.getDimsList().equals(w.getDimsList())
                    || !sameValues(h, model.baseDir(), w)) {
                return "initializer '" + w.getName() + "' differs";
            }
        }
        return null;
    }

    private static boolean sameValues(TensorProto have, Path baseDir, TensorProto want) {
        if (want.getDataType() == DataType.INT64_VALUE || want.getDataType() == DataType.INT32_VALUE) {
            return Arrays.equals(Tensors.longs(have, baseDir), Tensors.longs(want, null));
        }
        return Arrays.equals(Tensors.floats(have, baseDir), Tensors.floats(want, null));
    }

    /** optimize stamps attnskip.mode and attnskip.layers on what it rewrites; naming them tells the user why. */
    private static String rewriteHint(ModelProto proto) {
        String props = proto.getMetadataPropsList().stream()
                .filter(e -> e.getKey().equals("attnskip.mode") || e.getKey().equals("attnskip.layers"))
                .map(e -> e.getKey() + "=" + e.getValue())
                .collect(Collectors.joining(", "));
        return props.isEmpty() ? "" : "; it was rewritten: " + props;
    }
}
