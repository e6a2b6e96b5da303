/**
 * Execution of {@link aether.runtime.ir.OpGraph}s. {@link aether.scheduler.exec.GraphExecutor} is the seam every
 * backend implements: it takes a graph and its bound inputs and completes a {@link java.util.concurrent.CompletionStage}
 * once the outputs are on the host, so a CUDA backend can enqueue on a stream and complete from a stream callback
 * without blocking the caller. {@link aether.scheduler.exec.ReferenceExecutor} is the straightforward, correct CPU
 * implementation every faster backend is tested against. Quantized weights reach executors as {@link
 * aether.scheduler.exec.WeightRows}, dequantized one row at a time, never expanded ({@link
 * aether.scheduler.exec.CodecWeightRows} adapts any {@code BlockCodec}). {@link
 * aether.scheduler.exec.StorageFormat} converts values to and from the bytes tensors travel as between segments and
 * nodes, and {@link aether.scheduler.exec.HostSegmentExecutor} is how the CPU device (device-workers' SPI) runs a
 * segment: compiled where it can, the reference executor node by node otherwise. Depends on runtime-actors, the
 * Device SPI and the compiler.
 */
package aether.scheduler.exec;
