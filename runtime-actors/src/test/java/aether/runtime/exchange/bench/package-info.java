/**
 * Benchmarks of the buffer exchange: transfers over Aeron IPC (across processes and between two nodes of one
 * process) and UDP loopback, reported next to an in-process {@code MemorySegment.copy} of the same size measured in the
 * same run. Test code only; depends on the exchange's public API and its test peer.
 */
package aether.runtime.exchange.bench;
