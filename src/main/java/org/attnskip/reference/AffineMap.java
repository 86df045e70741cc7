package org.attnskip.reference;

/**
 * A per-token affine map y = x . first (. second) + bias on hidden vectors of size dim, the fitted
 * stand-in for a dropped attention sub-block. Matrices are row-major in the orientation ONNX's
 * MatMul reads them ([in][out]): full rank is one [dim][dim] matrix; rank R is [dim][R] then
 * [R][dim], two thin MatMuls.
 *
 * @param second null for a full-rank map
 */
public record AffineMap(int dim, float[] first, float[] second, float[] bias) {
    public AffineMap {
        if (bias.length != dim || first.length % dim != 0) {
            throw new IllegalArgumentException("map of dim " + dim + ": bias has " + bias.length + " values, first "
                    + first.length);
        }
        int width = first.length / dim;
        if (second == null ? width != dim : second.length != width * dim) {
            throw new IllegalArgumentException("map of dim " + dim + ": matrices of " + first.length + " and "
                    + (second == null ? "no" : second.length) + " values do not compose to dim x dim");
        }
    }

    /** The inner width: dim for a full map, R for a rank-R one. */
    public int rank() {
        return first.length / dim;
    }

    public boolean lowRank() {
        return second != null;
    }

    /** Weights stored, bias included. */
    public long parameters() {
        return first.length + (second == null ? 0 : second.length) + bias.length;
    }

    /** x . first (. second) + bias, accumulated in float in index order. */
    public float[] apply(float[] x) {
        float[] h = multiply(x, first, rank());
        if (second != null) {
            h = multiply(h, second, dim);
        }
        for (int o = 0; o < dim; o++) {
            h[o] += bias[o];
        }
        return h;
    }

    private static float[] multiply(float[] x, float[] m, int out) {
        float[] y = new float[out];
        for (int o = 0; o < out; o++) {
            float acc = 0.0f;
            for (int i = 0; i < x.length; i++) {
                acc += x[i] * m[i * out + o];
            }
            y[o] = acc;
        }
        return y;
    }
}
