package org.attnskip.onnx;

import ai.onnx.proto.OnnxMl.ModelProto;

import java.nio.file.Path;
import java.util.List;

/**
 * A parsed model and the directory its external data lives in. External tensors stay
 * external: their bytes are read on demand from {@code baseDir}, so a model with gigabytes
 * of weights never becomes one protobuf message. {@code inlinedFunctions} names the ONNX local
 * functions the file called ("DecoderLayer x4"), which {@code proto} has inlined; empty for most models.
 */
public record LoadedModel(ModelProto proto, Path file, Path baseDir, List<String> inlinedFunctions) {
    public LoadedModel(ModelProto proto, Path file, Path baseDir) {
        this(proto, file, baseDir, List.of());
    }

    public Graph graph() {
        return new Graph(proto);
    }
}
