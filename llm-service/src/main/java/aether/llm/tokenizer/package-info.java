/**
 * Tokenizers built from GGUF metadata that give the same token ids as llama.cpp: SentencePiece-style
 * ({@code tokenizer.ggml.model = llama}), GPT-2 byte-level BPE ({@code gpt2}, with llama.cpp's per-{@code
 * tokenizer.ggml.pre} pre-tokenizer regexes) and WordPiece ({@code bert}). {@link aether.llm.tokenizer.Tokenizer} is
 * the entry point; {@link aether.llm.tokenizer.StreamingDecoder} turns generated ids into valid UTF-8 text one token
 * at a time. The algorithms are ports of llama.cpp's {@code src/llama-vocab.cpp} and {@code src/unicode.cpp}, including
 * their quirks, because token ids must match the model's training. Depends only on {@code aether.llm.gguf} metadata;
 * it must not depend on model weights, the engine or the runtime.
 */
package aether.llm.tokenizer;
