package aether.scheduler.exec;

import aether.runtime.tensor.GgmlType;

/** Counts row reads of a delegate, to prove a weight is decoded once per evaluation. */
final class CountingRows implements WeightRows {

    private final WeightRows delegate;
    int reads;

    CountingRows(WeightRows delegate) {
        this.delegate = delegate;
    }

    @Override
    public GgmlType type() {
        return delegate.type();
    }

    @Override
    public int rows() {
        return delegate.rows();
    }

    @Override
    public int cols() {
        return delegate.cols();
    }

    @Override
    public void row(int row, float[] dst) {
        reads++;
        delegate.row(row, dst);
    }
}
