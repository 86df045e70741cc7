package org.attnskip.export;

/** The shape every {@link WeightRows} source carries, written once; subclasses say how rows are read. */
abstract class ShapedRows implements WeightRows {
    protected final int rows;
    protected final int cols;

    protected ShapedRows(int rows, int cols) {
        this.rows = rows;
        this.cols = cols;
    }

    @Override
    public final int rows() {
        return rows;
    }

    @Override
    public final int cols() {
        return cols;
    }
}
