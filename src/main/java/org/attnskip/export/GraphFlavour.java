package org.attnskip.export;

import org.attnskip.onnx.BadInputException;

/** How the exporter spells a decoder layer: the two flavours of DESIGN.md. */
public enum GraphFlavour {
    /** Standard ONNX ops only, every step spelled out ({@link LlamaOnnxExporter}): the reference form. */
    UNFUSED("unfused"),
    /** ONNX Runtime's contrib ops as its model builder writes them ({@link FusedLlamaExporter}): the fast form. */
    FUSED("fused");

    private final String cliName;

    GraphFlavour(String cliName) {
        this.cliName = cliName;
    }

    /** The spelling on the command line and in attnskip.json. */
    public String cliName() {
        return cliName;
    }

    public static GraphFlavour parse(String name) {
        for (GraphFlavour f : values()) {
            if (f.cliName.equalsIgnoreCase(name)) {
                return f;
            }
        }
        throw new BadInputException("unknown graph flavour '" + name + "': use unfused or fused");
    }
}
