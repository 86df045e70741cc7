package org.attnskip.export;

import ai.onnx.proto.OnnxMl.TensorProto;
import ai.onnx.proto.OnnxMl.TensorProto.DataType;
import org.attnskip.onnx.BadInputException;
import org.attnskip.onnx.ExternalData;
import org.attnskip.onnx.LoadedModel;
import org.attnskip.onnx.Tensors;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The weights of a directory that attnskip export wrote, read where they lie: external tensors
 * through a memory-mapped window of the data file ({@link MappedWindow}), inline ones from the
 * graph's bytes, a row block at a time and widened from fp16 when the export was fp16. Nothing is
 * read into the heap whole, so a reader that multiplies a block at a time (the reference
 * implementation) runs on a model of any size. The MatMul weights are stored [in][out]:
 * {@link #storedTransposed} hands them out as stored, {@link #weight} as the [out][in] view every
 * source gives. {@link ExportedWeights#open} checks the graph is the exporter's before handing
 * this out. Not thread-safe: the views share one window per file.
 */
final class ExportedWeightSource implements LlamaWeightSource {
    private final LlamaConfig c;
    private final boolean fused;
    private final LoadedModel model;
    private final Map<String, TensorProto> initializers = new HashMap<>();
    private final Map<Path, MappedWindow> windows = new HashMap<>();
    private final List<FileChannel> channels = new ArrayList<>();

    ExportedWeightSource(LoadedModel model, LlamaConfig config, boolean fused) {
        this.c = config;
        this.fused = fused;
        this.model = model;
        for (TensorProto t : model.proto().getGraph().getInitializerList()) {
            initializers.put(t.getName(), t);
        }
    }

    @Override
    public LlamaConfig config() {
        return c;
    }

    @Override
    public boolean classifierIsEmbedding() {
        return !initializers.containsKey("lm_head.weight");
    }

    @Override
    public WeightRows weight(WeightPart part, int layer) {
        String p = "model.layers." + layer + ".";
        return switch (part) {
            case EMBEDDING -> tensor("model.embed_tokens.weight", c.vocabSize(), c.dim()).asStored();
            case ATTN_NORM -> tensor(p + "input_layernorm.weight", c.dim()).asStored();
            case FFN_NORM -> tensor(p + "post_attention_layernorm.weight", c.dim()).asStored();
            case FINAL_NORM -> tensor("model.norm.weight", c.dim()).asStored();
            case BQ, BK, BV -> bias(part, p);
            default -> matrix(part, p).transposed();
        };
    }

    /** The matrix parts as the graph stores them, [in][out]; null for the other parts. */
    @Override
    public WeightRows storedTransposed(WeightPart part, int layer) {
        return switch (part) {
            case WQ, WK, WV, WO, W1, W2, W3, CLASSIFIER -> matrix(part, "model.layers." + layer + ".").asStored();
            default -> null;
        };
    }

    /** A matrix part stored [in][out] (for the fused graph's q, k, v: columns of the packed q|k|v). */
    private StoredMatrix matrix(WeightPart part, String p) {
        int d = c.dim();
        int kv = c.kvDim();
        int hid = c.hiddenDim();
        if (fused && (part == WeightPart.WQ || part == WeightPart.WK || part == WeightPart.WV)) {
            int first = part == WeightPart.WQ ? 0 : part == WeightPart.WK ? d : d + kv;
            return tensor(p + "attn.qkv_proj.weight", first, part == WeightPart.WQ ? d : kv, d, d, d + 2 * kv);
        }
        String attention = fused ? "attn." : "self_attn.";
        return switch (part) {
            case WQ -> tensor(p + attention + "q_proj.weight", d, d);
            case WK -> tensor(p + attention + "k_proj.weight", d, kv);
            case WV -> tensor(p + attention + "v_proj.weight", d, kv);
            case WO -> tensor(p + attention + "o_proj.weight", d, d);
            case W1 -> tensor(p + "mlp.gate_proj.weight", d, hid);
            case W2 -> tensor(p + "mlp.down_proj.weight", hid, d);
            case W3 -> tensor(p + "mlp.up_proj.weight", d, hid);
            case CLASSIFIER -> tensor("lm_head.weight", d, c.vocabSize());
            default -> throw new IllegalArgumentException(part + " is no matrix");
        };
    }

    private WeightRows bias(WeightPart part, String p) {
        int d = c.dim();
        int kv = c.kvDim();
        if (fused) {
            int first = part == WeightPart.BQ ? 0 : part == WeightPart.BK ? d : d + kv;
            return tensor(p + "attn.qkv_proj.bias", first, part == WeightPart.BQ ? d : kv, 1, d + 2 * kv).asStored();
        }
        String name = switch (part) {
            case BQ -> "q_proj.bias";
            case BK -> "k_proj.bias";
            default -> "v_proj.bias";
        };
        return tensor(p + "self_attn." + name, part == WeightPart.BQ ? d : kv).asStored();
    }

    /** A vector as one row. */
    private StoredMatrix tensor(String name, int size) {
        return tensor(name, 0, size, 1, size);
    }

    private StoredMatrix tensor(String name, int rows, int cols) {
        return tensor(name, 0, cols, rows, rows, cols);
    }

    /** Columns first .. first+width of the initializer, whose dims must be {@code dims} ([rows][stride] or [stride]). */
    private StoredMatrix tensor(String name, int first, int width, int rows, long... dims) {
        TensorProto t = initializers.get(name);
        if (t == null) {
            throw new ExportedWeights.NotExporterGraph("it has no initializer '" + name + "'");
        }
        long[] have = t.getDimsList().stream().mapToLong(Long::longValue).toArray();
        if (!Arrays.equals(have, dims)) {
            throw new ExportedWeights.NotExporterGraph("initializer '" + name + "' has dims " + Arrays.toString(have)
                    + ", the manifest implies " + Arrays.toString(dims));
        }
        Safetensors.DType type = switch (DataType.forNumber(t.getDataType())) {
            case FLOAT -> Safetensors.DType.F32;
            case FLOAT16 -> Safetensors.DType.F16;
            default -> throw new ExportedWeights.NotExporterGraph("initializer '" + name + "' is "
                    + DataType.forNumber(t.getDataType()) + ", not a float the exporter writes");
        };
        int stride = (int) dims[dims.length - 1];
        long bytes = rows * (long) stride * type.bytes;
        if (!ExternalData.isExternal(t)) {
            ByteBuffer raw = t.getRawData().isEmpty() ? fp32Bytes(t) : t.getRawData().asReadOnlyByteBuffer();
            if (raw.remaining() != bytes) {
                throw new BadInputException("initializer '" + name + "' holds " + raw.remaining() + " bytes, not " + bytes);
            }
            return new StoredMatrix((pos, len) -> raw.slice((int) pos, len).order(ByteOrder.LITTLE_ENDIAN), 0, rows, stride,
                    first, width, type == Safetensors.DType.F16 && t.getRawData().isEmpty() ? Safetensors.DType.F32 : type);
        }
        ExternalData ext = ExternalData.of(t);
        if (ext.length() >= 0 && ext.length() != bytes) {
            throw new BadInputException("initializer '" + name + "' has " + ext.length() + " bytes of external data, not " + bytes);
        }
        MappedWindow window = window(ext.file(model.baseDir(), name));
        return new StoredMatrix(window::at, ext.offset(), rows, stride, first, width, type);
    }

    /** A tensor given as float_data (or fp16 in int32_data), as little-endian fp32 bytes. */
    private ByteBuffer fp32Bytes(TensorProto t) {
        float[] values = Tensors.floats(t, model.baseDir());
        ByteBuffer b = ByteBuffer.allocate(4 * values.length).order(ByteOrder.LITTLE_ENDIAN);
        b.asFloatBuffer().put(values);
        return b;
    }

    private MappedWindow window(Path file) {
        MappedWindow w = windows.get(file);
        if (w == null) {
            try {
                FileChannel channel = FileChannel.open(file, StandardOpenOption.READ);
                channels.add(channel);
                w = new MappedWindow(file, channel);
            } catch (IOException e) {
                throw new BadInputException("cannot read " + file + ": " + e.getMessage(), e);
            }
            windows.put(file, w);
        }
        return w;
    }

    @Override
    public void close() {
        windows.values().forEach(MappedWindow::close);
        windows.clear();
        for (FileChannel ch : channels) {
            try {
                ch.close();
            } catch (IOException ignored) {
                // read-only: nothing is lost
            }
        }
        channels.clear();
    }
}
