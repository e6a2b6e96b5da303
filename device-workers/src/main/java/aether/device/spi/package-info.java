/**
 * The Device SPI: what a device worker needs from a device (CPU pool, CUDA GPU) — capabilities, explicit buffers
 * (allocate, upload, download, free), asynchronous segment execution that returns a {@link
 * aether.device.spi.CompletionEvent}, and failures that name the op. Depends on the runtime's protocol and IR only;
 * never on actors or the scheduler.
 */
package aether.device.spi;
