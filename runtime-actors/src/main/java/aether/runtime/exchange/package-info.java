/**
 * The runtime's buffer exchange: tensor bytes move between workers here, while actor messages carry only a
 * {@link aether.runtime.exchange.TensorDescriptor}. Across processes on one host the bytes go over Aeron IPC (shared
 * memory), across hosts over Aeron UDP, both through an {@link aether.runtime.exchange.ExchangeNode} that owns (or
 * connects to) a media driver and runs all polling on one Agrona agent thread; inside one JVM a
 * {@link aether.runtime.exchange.LocalHandOff} passes the very same {@code MemorySegment} with the same API. Payloads
 * are cut into frames with their own header and CRC32C and reassembled straight into a caller-allocated segment; loss,
 * timeout and corruption fail the transfer's future, never deliver bad bytes. Depends on Aeron and Agrona only, never
 * on actors, devices or the scheduler.
 */
package aether.runtime.exchange;
