package org.attnskip;

/** The largest absolute difference between two vectors of the same length, as tests compare logits. */
public final class Deltas {
    private Deltas() {
    }

    public static float maxAbsDelta(float[] a, float[] b) {
        if (a.length != b.length) {
            throw new AssertionError("length " + a.length + " != " + b.length);
        }
        float m = 0;
        for (int i = 0; i < a.length; i++) {
            m = Math.max(m, Math.abs(a[i] - b[i]));
        }
        return m;
    }

    /** A reference computed in double against a graph's float output. */
    public static double maxAbsDelta(double[] want, float[] got) {
        if (want.length != got.length) {
            throw new AssertionError("length " + want.length + " != " + got.length);
        }
        double m = 0;
        for (int i = 0; i < want.length; i++) {
            m = Math.max(m, Math.abs(want[i] - got[i]));
        }
        return m;
    }
}
