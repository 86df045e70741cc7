package org.attnskip.layout;

/** How a graph stores its projection weights, as read at layer 0's Q (or packed QKV) projection. */
public enum ProjectionKind {
    /** A float MatMul or Gemm, its weight stored as is, transposed or reshaped. */
    FLOAT("float"),
    /** com.microsoft::MatMulNBits with 4-bit codes. */
    INT4("int4"),
    /** com.microsoft::MatMulNBits with 8-bit codes. */
    INT8("int8"),
    /** com.microsoft::MatMulNBits with another code width. */
    NBITS("nbits"),
    /** A MatMul reading its weight through DequantizeLinear. */
    QDQ("qdq");

    public final String label;

    ProjectionKind(String label) {
        this.label = label;
    }
}
