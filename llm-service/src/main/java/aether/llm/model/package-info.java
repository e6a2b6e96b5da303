/**
 * What a model is, independent of how it runs: its hyper-parameters ({@link aether.llm.model.ModelConfig}, read once
 * from GGUF metadata and validated) and its weights ({@link aether.llm.model.ModelWeights}, looked up by name at load
 * time and kept in the memory-mapped file, never copied). Problems with a model file surface here as {@link
 * aether.llm.model.ModelLoadException}s that name the architecture, key or tensor. Depends on {@code aether.llm.gguf},
 * the scheduler's weight views and the block codecs; it must not depend on architectures, tokenizers or the engine.
 */
package aether.llm.model;
