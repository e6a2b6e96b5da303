/**
 * GGUF, the model file format of llama.cpp: a validating, zero-copy reader ({@link aether.llm.gguf.GgufFile}, tensor
 * data stays in the memory-mapped file), a streaming writer ({@link aether.llm.gguf.GgufWriter}) that reproduces files
 * byte for byte, the typed metadata model and a model summary for {@code ./aether inspect}. Every check on untrusted
 * bytes happens here, once, at open time; everything downstream trusts a {@code GgufFile} that opened. Depends only on
 * the tensor types of {@code aether.runtime.tensor}; it must not depend on tokenizers, architectures or the engine.
 */
package aether.llm.gguf;
