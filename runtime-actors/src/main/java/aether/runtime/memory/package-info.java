/**
 * The memory manager: which copies of which buffers live where (host, devices), their versions, pins and recency,
 * per-location soft budgets and LRU eviction that never drops a pinned buffer or the last copy of data. The pure
 * bookkeeping ({@link aether.runtime.memory.BufferRegistry}, {@link aether.runtime.memory.EvictionPolicy}) is
 * single-threaded and testable without actors; {@link aether.runtime.memory.MemoryManager} is the actor that owns it.
 * Depends on {@code aether.runtime.protocol} and Pekko Typed only; it never touches buffer bytes: workers do.
 */
package aether.runtime.memory;
