/**
 * CPU matmul kernels over ggml weight layouts: {@link aether.device.cpu.kernel.Matmul} computes
 * {@code y = x · Wᵀ} (ggml_mul_mat's convention) with W read straight from its blocks in a {@code MemorySegment}
 * (usually a slice of a mapped GGUF), dequantization fused into the dot product, on a
 * {@link aether.device.cpu.KernelPool}; {@link aether.device.cpu.kernel.PackedWeights} prepares a matrix once (at
 * model load) into a layout that decodes faster where one exists (Q4_0). Every vector kernel has a scalar reference (forced by
 * {@code -Daether.vector=false}) that the tests compare against a float64 reference. Depends on the JDK,
 * {@code jdk.incubator.vector} and {@code aether.runtime.tensor} only; it must not depend on actors or the
 * scheduler, and it does not use the codec library ({@code aether.runtime.quant}): kernels read blocks themselves.
 */
package aether.device.cpu.kernel;
