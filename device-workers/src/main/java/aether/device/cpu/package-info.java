/**
 * The CPU device: a dedicated kernel thread pool ({@link aether.device.cpu.KernelPool}) whose threads run the
 * data-parallel part of each op while the caller thread participates. Depends only on the JDK and
 * {@code aether.runtime.tensor}; {@link aether.device.cpu.CpuDevice} puts it behind the Device SPI. It must not depend on actors, the scheduler or anything above, so kernels can be
 * benchmarked and tested alone.
 */
package aether.device.cpu;
