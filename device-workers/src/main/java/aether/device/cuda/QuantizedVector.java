package aether.device.cuda;

import jcuda.driver.CUdeviceptr;

/**
 * An activation vector quantized on the device per 32 elements (llama.cpp's q8_1): {@code quants} int8[length] and
 * {@code scales} float2[length / 32] = (d, sum of the block's float values). The integer dot products of the Q4_0 and
 * Q8_0 GEMV kernels read it.
 */
public record QuantizedVector(int length, CUdeviceptr quants, CUdeviceptr scales) {

    public static QuantizedVector allocate(CudaContext cuda, int length) {
        if (length <= 0 || length % 32 != 0) {
            throw new IllegalArgumentException("quantized vector of " + length + " elements (expected a multiple of 32)");
        }
        return new QuantizedVector(length, cuda.alloc(length), cuda.alloc((long) length / 32 * 8));
    }

    public void free(CudaContext cuda) {
        cuda.free(quants, length);
        cuda.free(scales, (long) length / 32 * 8);
    }
}
