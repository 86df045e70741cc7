package org.attnskip.layout;

/** How a layer's KV cache grows from one step to the next. */
public enum CacheKind {
    /** The graph returns past + new as a fresh present tensor (Concat, or an attention op doing it). */
    CONCAT("concat"),
    /** The attention op writes the new positions into its past buffer, bound as its present (GQA). */
    IN_PLACE("in_place"),
    /** Fixed-size buffers written at given indices (ONNX TensorScatter), read whole with a valid length. */
    STATIC("static");

    public final String label;

    CacheKind(String label) {
        this.label = label;
    }
}
