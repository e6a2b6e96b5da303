/**
 * Device worker actors: {@link aether.device.worker.DeviceWorker} drives one {@link aether.device.spi.Device} (a CPU
 * pool now, a GPU next), registers it with the Receptionist with its capabilities and runs the segments a scheduler
 * sends; {@link aether.device.worker.TensorStore} is the node's zero-copy hand-off of tensors between segments, and
 * {@link aether.device.worker.TensorFetcher} the hook through which tensors from other nodes arrive. Depends on the
 * Device SPI and the runtime's protocol; never on the scheduler.
 */
package aether.device.worker;
