package org.attnskip.export;

import ai.onnx.proto.OnnxMl.TensorProto.DataType;
import org.attnskip.onnx.BadInputException;

/** The element type of an exported graph's weights, activations, KV cache and logits. */
public enum ExportDtype {
    FLOAT("fp32", DataType.FLOAT),
    FLOAT16("fp16", DataType.FLOAT16);

    private final String cliName;
    private final DataType onnxType;

    ExportDtype(String cliName, DataType onnxType) {
        this.cliName = cliName;
        this.onnxType = onnxType;
    }

    /** The spelling used on the command line and in attnskip.json: fp32 or fp16. */
    public String cliName() {
        return cliName;
    }

    public int onnxType() {
        return onnxType.getNumber();
    }

    public static ExportDtype parse(String name) {
        for (ExportDtype d : values()) {
            if (d.cliName.equalsIgnoreCase(name) || d.name().equalsIgnoreCase(name)) {
                return d;
            }
        }
        throw new BadInputException("unknown dtype '" + name + "': use fp32 or fp16");
    }
}
