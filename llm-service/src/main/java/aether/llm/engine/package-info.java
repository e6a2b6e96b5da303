/**
 * Running a model. The {@link aether.llm.engine.InferenceModel} contract (multi-sequence steps) has two
 * implementations: {@link aether.llm.engine.PagedInferenceModel}, the engine behind {@link
 * aether.llm.engine.LoadedModel#open} (a paged KV pool of 16-position blocks, shape-stable step graphs compiled once
 * per (tokens, sequences) shape), and the exact, slow {@link aether.llm.engine.ReferenceInferenceModel} over the
 * per-sequence {@link aether.llm.engine.KvCache}, the {@link aether.llm.engine.ForwardRunner}
 * that feeds batches through an architecture's forward graphs (built once per batch shape and reused), and the
 * minimal {@link aether.llm.engine.GreedyGenerator} that the golden tests compare with llama.cpp. A step returns the
 * last token's logits, or a row per token (logits, or final hidden states for embeddings, pooled by {@link
 * aether.llm.engine.Pooling}). Depends on {@code aether.llm.arch}, {@code aether.llm.model}
 * and the scheduler's executors and compiler; nothing here depends on actors.
 */
package aether.llm.engine;
