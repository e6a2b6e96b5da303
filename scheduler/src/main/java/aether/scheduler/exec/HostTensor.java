package aether.scheduler.exec;

import aether.runtime.ir.DType;
import aether.runtime.ir.Shape;
import aether.runtime.ir.TensorType;

/**
 * A dense host value. The reference executor keeps every element as a double, already rounded to the value's dtype
 * (f32, f16, bf16 values are exactly representable; I32 values are integers), so one kernel serves every precision.
 * Immutable: the array is copied in by the factories and out by the accessors.
 */
public final class HostTensor implements TensorValue {

    private final TensorType type;
    private final double[] data;

    private HostTensor(TensorType type, double[] data) {
        if (type.dtype().isQuantized()) {
            throw new IllegalArgumentException("host tensor " + type + ": quantized data is bound as a WeightTensor");
        }
        if (data.length != type.shape().size()) {
            throw new IllegalArgumentException("host tensor " + type + " needs " + type.shape().size()
                    + " elements, found " + data.length);
        }
        this.type = type;
        this.data = data;
    }

    /** Wraps {@code data} without copying; the caller must never modify it afterwards. */
    static HostTensor wrap(TensorType type, double[] data) {
        return new HostTensor(type, data);
    }

    /** f32 values. */
    public static HostTensor ofFloats(float[] values, Shape shape) {
        double[] d = new double[values.length];
        for (int i = 0; i < d.length; i++) {
            d[i] = values[i];
        }
        return new HostTensor(new TensorType(shape, DType.F32), d);
    }

    /** Values of a floating {@code dtype}, rounded to it. */
    public static HostTensor of(double[] values, Shape shape, DType dtype) {
        if (!dtype.isFloat()) {
            throw new IllegalArgumentException("HostTensor.of takes a floating dtype (found " + dtype + ")");
        }
        double[] d = values.clone();
        Rounding.round(d, dtype);
        return new HostTensor(new TensorType(shape, dtype), d);
    }

    /** f64 values. */
    public static HostTensor ofDoubles(double[] values, Shape shape) {
        return new HostTensor(new TensorType(shape, DType.F64), values.clone());
    }

    /** I32 values (token ids, positions). */
    public static HostTensor ofInts(int[] values, Shape shape) {
        double[] d = new double[values.length];
        for (int i = 0; i < d.length; i++) {
            d[i] = values[i];
        }
        return new HostTensor(new TensorType(shape, DType.I32), d);
    }

    @Override
    public TensorType type() {
        return type;
    }

    public Shape shape() {
        return type.shape();
    }

    public int size() {
        return data.length;
    }

    public double get(int index) {
        return data[index];
    }

    public float[] toFloatArray() {
        float[] f = new float[data.length];
        for (int i = 0; i < f.length; i++) {
            f[i] = (float) data[i];
        }
        return f;
    }

    public double[] toDoubleArray() {
        return data.clone();
    }

    public int[] toIntArray() {
        int[] r = new int[data.length];
        for (int i = 0; i < r.length; i++) {
            r[i] = (int) data[i];
        }
        return r;
    }

    /** The backing array, shared: executors read it, nobody writes it. */
    double[] data() {
        return data;
    }

    @Override
    public String toString() {
        return "HostTensor" + type;
    }
}
