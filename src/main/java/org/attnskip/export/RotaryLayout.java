package org.attnskip.export;

/**
 * Converts q/k projection rows between the two rotary conventions. Hugging Face rotates halves:
 * within a head of size d, element j pairs with j + d/2. llama2.c (and {@link LlamaWeights})
 * rotates adjacent pairs (2j, 2j+1). Both give pair j the same frequency, so moving row j to 2j
 * and row j + d/2 to 2j+1 makes the interleaved rotation compute exactly what HF computed.
 */
public final class RotaryLayout {
    private RotaryLayout() {
    }

    /**
     * @param rows    [heads * headDim][cols] row-major (a weight matrix, or a bias with cols = 1)
     * @return a new array with each head's rows reordered from the halves to the interleaved layout
     */
    public static float[] halvesToInterleaved(float[] rows, int heads, int headDim, int cols) {
        if ((long) heads * headDim * cols != rows.length || headDim % 2 != 0) {
            throw new IllegalArgumentException("expected " + heads + " heads of an even size " + headDim + " x "
                    + cols + " columns, got " + rows.length + " values");
        }
        float[] out = new float[rows.length];
        int half = headDim / 2;
        for (int h = 0; h < heads; h++) {
            int base = h * headDim;
            for (int j = 0; j < half; j++) {
                System.arraycopy(rows, (base + j) * cols, out, (base + 2 * j) * cols, cols);
                System.arraycopy(rows, (base + j + half) * cols, out, (base + 2 * j + 1) * cols, cols);
            }
        }
        return out;
    }

    /**
     * The row of a halves-order projection that lands at {@code row} of the interleaved one: what
     * {@link #halvesToInterleaved} does, for a reader that fetches the rows one by one.
     */
    public static int storedHalvesRow(int row, int headDim) {
        int base = row - row % headDim;
        int j = row % headDim;
        return base + j / 2 + (j % 2 == 0 ? 0 : headDim / 2);
    }
}
