package org.attnskip.export;

import ai.onnx.proto.OnnxMl.ModelProto;
import org.attnskip.onnx.BadInputException;
import org.attnskip.onnx.ExternalDataWriter;

/** How the exporter spells a decoder layer: the two flavours of DESIGN.md. */
public enum GraphFlavour {
    /** Standard ONNX ops only, every step spelled out ({@link LlamaOnnxExporter}): the reference form. */
    UNFUSED("unfused"),
    /** ONNX Runtime's contrib ops as its model builder writes them ({@link FusedLlamaExporter}): the fast form. */
    FUSED("fused"),
    /**
     * The standard ONNX opset-24 LLM spelling with a static cache ({@link StaticCacheLlamaExporter}):
     * RMSNormalization, RotaryEmbedding, Attention, TensorScatter into fixed-size buffers.
     */
    STATIC("static");

    private final String cliName;

    GraphFlavour(String cliName) {
        this.cliName = cliName;
    }

    /** The spelling on the command line and in attnskip.json. */
    public String cliName() {
        return cliName;
    }

    /** The graph of this flavour, its weights inline ({@code externalData} null) or streamed there. */
    public ModelProto export(LlamaWeightSource weights, ExportDtype dtype, ExternalDataWriter externalData) {
        return switch (this) {
            case UNFUSED -> LlamaOnnxExporter.export(weights, dtype, externalData);
            case FUSED -> FusedLlamaExporter.export(weights, dtype, externalData);
            case STATIC -> StaticCacheLlamaExporter.export(weights, dtype, externalData);
        };
    }

    public static GraphFlavour parse(String name) {
        for (GraphFlavour f : values()) {
            if (f.cliName.equalsIgnoreCase(name)) {
                return f;
            }
        }
        throw new BadInputException("unknown graph flavour '" + name + "': use unfused, fused or static");
    }
}
