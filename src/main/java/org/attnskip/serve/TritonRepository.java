package org.attnskip.serve;

import ai.onnx.proto.OnnxMl.GraphProto;
import ai.onnx.proto.OnnxMl.TensorProto;
import ai.onnx.proto.OnnxMl.TensorShapeProto;
import ai.onnx.proto.OnnxMl.ValueInfoProto;
import org.attnskip.onnx.BadInputException;
import org.attnskip.onnx.LoadedModel;
import org.attnskip.onnx.OnnxModelIO;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Set;
import java.util.stream.Collectors;

/**
 * Writes a Triton Inference Server model repository for the onnxruntime backend:
 * {@code repo/NAME/config.pbtxt}, listing the graph's real inputs and outputs (symbolic dimensions as
 * -1), and {@code repo/NAME/1/model.onnx} with its external data beside it when it has any.
 */
public final class TritonRepository {
    private TritonRepository() {
    }

    /** Returns the model's folder inside the repository. */
    public static Path write(LoadedModel model, String name, Path repository) {
        if (!name.matches("[A-Za-z0-9_.-]+")) {
            throw new BadInputException("Triton model name '" + name + "' may only use letters, digits, '_', '.' and '-'");
        }
        Path folder = repository.resolve(name);
        try {
            Files.createDirectories(folder.resolve("1"));
            OnnxModelIO.save(model, model.proto(), folder.resolve("1").resolve("model.onnx"));
            Files.writeString(folder.resolve("config.pbtxt"), config(model.proto().getGraph(), name));
        } catch (IOException e) {
            throw new BadInputException("cannot write " + folder + ": " + e.getMessage(), e);
        }
        return folder;
    }

    /**
     * The config: max_batch_size 0 because the graph's dims include the batch (as -1), so Triton
     * passes shapes through unchanged and the client owns the KV cache between calls.
     */
    public static String config(GraphProto graph, String name) {
        Set<String> initializers = graph.getInitializerList().stream().map(TensorProto::getName).collect(Collectors.toSet());
        StringBuilder out = new StringBuilder();
        out.append("name: \"").append(name).append("\"\n");
        out.append("backend: \"onnxruntime\"\n");
        out.append("max_batch_size: 0\n");
        out.append("input [\n");
        tensors(out, graph.getInputList().stream().filter(v -> !initializers.contains(v.getName())).toList());
        out.append("]\n");
        out.append("output [\n");
        tensors(out, graph.getOutputList());
        out.append("]\n");
        return out.toString();
    }

    private static void tensors(StringBuilder out, java.util.List<ValueInfoProto> values) {
        for (int i = 0; i < values.size(); i++) {
            ValueInfoProto v = values.get(i);
            if (!v.getType().hasTensorType()) {
                throw new BadInputException("graph input/output '" + v.getName() + "' is not a tensor; Triton needs tensors");
            }
            var t = v.getType().getTensorType();
            out.append("  {\n");
            out.append("    name: \"").append(v.getName()).append("\"\n");
            out.append("    data_type: ").append(tritonType(v.getName(), t.getElemType())).append('\n');
            out.append("    dims: [ ").append(dims(t.getShape())).append(" ]\n");
            out.append(i + 1 < values.size() ? "  },\n" : "  }\n");
        }
    }

    private static String dims(TensorShapeProto shape) {
        return shape.getDimList().stream()
                .map(d -> d.hasDimValue() && d.getDimValue() > 0 ? String.valueOf(d.getDimValue()) : "-1")
                .collect(Collectors.joining(", "));
    }

    /** ONNX TensorProto.DataType to Triton's TYPE_* names. */
    static String tritonType(String name, int onnxType) {
        return switch (onnxType) {
            case 1 -> "TYPE_FP32";
            case 2 -> "TYPE_UINT8";
            case 3 -> "TYPE_INT8";
            case 4 -> "TYPE_UINT16";
            case 5 -> "TYPE_INT16";
            case 6 -> "TYPE_INT32";
            case 7 -> "TYPE_INT64";
            case 8 -> "TYPE_STRING";
            case 9 -> "TYPE_BOOL";
            case 10 -> "TYPE_FP16";
            case 11 -> "TYPE_FP64";
            case 12 -> "TYPE_UINT32";
            case 13 -> "TYPE_UINT64";
            case 16 -> "TYPE_BF16";
            default -> throw new BadInputException("'" + name + "' has ONNX element type " + onnxType
                    + ", which Triton's onnxruntime backend cannot carry");
        };
    }
}
