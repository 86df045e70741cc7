package org.attnskip.export;

import ai.onnx.proto.OnnxMl.TensorProto.DataType;
import org.attnskip.onnx.BadInputException;

/**
 * The element type of an exported graph's weights, activations, KV cache and logits. int4 and int8
 * are fp32 graphs whose projection weights are block-quantized into com.microsoft::MatMulNBits, as
 * ONNX Runtime's model builder writes them for CPU.
 */
public enum ExportDtype {
    FLOAT("fp32", DataType.FLOAT, 0),
    FLOAT16("fp16", DataType.FLOAT16, 0),
    INT4("int4", DataType.FLOAT, 4),
    INT8("int8", DataType.FLOAT, 8);

    private final String cliName;
    private final DataType onnxType;
    private final int weightBits;

    ExportDtype(String cliName, DataType onnxType, int weightBits) {
        this.cliName = cliName;
        this.onnxType = onnxType;
        this.weightBits = weightBits;
    }

    /** Bits per projection weight code (MatMulNBits), or 0 when projections are float MatMuls. */
    public int weightBits() {
        return weightBits;
    }

    /** The spelling used on the command line and in attnskip.json: fp32, fp16, int4 or int8. */
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
        throw new BadInputException("unknown dtype '" + name + "': use fp32, fp16, int4 or int8");
    }
}
