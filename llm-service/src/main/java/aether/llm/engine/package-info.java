/**
 * Running a model: the per-sequence {@link aether.llm.engine.KvCache}, the {@link aether.llm.engine.ForwardRunner}
 * that feeds batches through an architecture's forward graphs (built once per batch shape and reused), and the
 * minimal {@link aether.llm.engine.GreedyGenerator} that the golden tests compare with llama.cpp. Sampling, batching
 * of several sequences and the engine actor come later on top of these. Depends on {@code aether.llm.arch}, {@code
 * aether.llm.model} and the scheduler's executor interface; it must not depend on a particular executor.
 */
package aether.llm.engine;
