package org.attnskip.onnx;

import ai.onnx.proto.OnnxMl.ModelProto;

import java.nio.file.Path;

/**
 * A parsed model and the directory its external data lives in. External tensors stay
 * external: their bytes are read on demand from {@code baseDir}, so a model with gigabytes
 * of weights never becomes one protobuf message.
 */
public record LoadedModel(ModelProto proto, Path file, Path baseDir) {
    public Graph graph() {
        return new Graph(proto);
    }
}
