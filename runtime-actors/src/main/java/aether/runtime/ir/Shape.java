package aether.runtime.ir;

import java.util.Arrays;

/**
 * Dimensions of a tensor in NumPy order: outermost first, the last dimension contiguous ({@code Shape.of(2, 3)} is 2
 * rows of 3 columns). Rank 0 is a scalar. Immutable; the array is copied in and out.
 *
 * @param dims sizes, each at least 0; the element count must fit a {@code long}
 */
public record Shape(int[] dims) {

    public static final Shape SCALAR = new Shape(new int[0]);

    public Shape {
        dims = dims.clone();
        long n = 1;
        for (int i = 0; i < dims.length; i++) {
            if (dims[i] < 0) {
                throw new IllegalArgumentException("shape " + Arrays.toString(dims) + ": dimension " + i
                        + " is " + dims[i] + " (expected: 0+)");
            }
            n = Math.multiplyExact(n, (long) dims[i]);
        }
    }

    public static Shape of(int... dims) {
        return new Shape(dims);
    }

    @Override
    public int[] dims() {
        return dims.clone();
    }

    public int rank() {
        return dims.length;
    }

    /** Size of dimension {@code axis}; a negative axis counts from the end ({@code -1} is the last). */
    public int dim(int axis) {
        return dims[normalizeAxis(axis)];
    }

    /** Number of elements (1 for a scalar). */
    public long size() {
        long n = 1;
        for (int d : dims) {
            n *= d;
        }
        return n;
    }

    /** The element count as an int, for host arrays; fails clearly past {@code Integer.MAX_VALUE}. */
    public int sizeAsInt() {
        long n = size();
        if (n > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("shape " + this + " has " + n + " elements (expected at most "
                    + Integer.MAX_VALUE + " for a host array)");
        }
        return (int) n;
    }

    /** Maps {@code -rank..rank-1} to {@code 0..rank-1}; anything else is an IllegalArgumentException. */
    public int normalizeAxis(int axis) {
        int a = axis < 0 ? axis + dims.length : axis;
        if (a < 0 || a >= dims.length) {
            throw new IllegalArgumentException("axis " + axis + " out of range for shape " + this
                    + " (expected: " + -dims.length + ".." + (dims.length - 1) + ")");
        }
        return a;
    }

    /** Row-major strides in elements. */
    public long[] strides() {
        long[] s = new long[dims.length];
        long acc = 1;
        for (int i = dims.length - 1; i >= 0; i--) {
            s[i] = acc;
            acc *= dims[i];
        }
        return s;
    }

    /** This shape with dimension {@code axis} replaced by {@code size}. */
    public Shape with(int axis, int size) {
        int[] d = dims.clone();
        d[normalizeAxis(axis)] = size;
        return new Shape(d);
    }

    /** This shape without dimension {@code axis}. */
    public Shape without(int axis) {
        int a = normalizeAxis(axis);
        int[] d = new int[dims.length - 1];
        System.arraycopy(dims, 0, d, 0, a);
        System.arraycopy(dims, a + 1, d, a, dims.length - a - 1);
        return new Shape(d);
    }

    /** Dimensions {@code from} (inclusive) to {@code to} (exclusive) as a shape. */
    public Shape sub(int from, int to) {
        return new Shape(Arrays.copyOfRange(dims, from, to));
    }

    /**
     * NumPy broadcasting: shapes are aligned at their last dimension; each pair of sizes must be equal or one of them
     * 1. Returns null when the shapes are incompatible (callers build the error message, which names the op).
     */
    public static Shape broadcast(Shape a, Shape b) {
        int rank = Math.max(a.dims.length, b.dims.length);
        int[] out = new int[rank];
        for (int i = 0; i < rank; i++) {
            int da = i < rank - a.dims.length ? 1 : a.dims[i - (rank - a.dims.length)];
            int db = i < rank - b.dims.length ? 1 : b.dims[i - (rank - b.dims.length)];
            if (da == db || db == 1) {
                out[i] = da;
            } else if (da == 1) {
                out[i] = db;
            } else {
                return null;
            }
        }
        return new Shape(out);
    }

    /** True when this shape broadcasts to {@code target} without changing {@code target}. */
    public boolean broadcastsTo(Shape target) {
        Shape b = broadcast(this, target);
        return b != null && b.equals(target);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof Shape s && Arrays.equals(dims, s.dims);
    }

    @Override
    public int hashCode() {
        return Arrays.hashCode(dims);
    }

    @Override
    public String toString() {
        return Arrays.toString(dims);
    }
}
