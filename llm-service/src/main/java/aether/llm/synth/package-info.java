/**
 * Synthetic models: random-weight Llama-shaped GGUF files of realistic sizes with a real tokenizer copied from a
 * vocab GGUF. Benchmarks run on them (1B, 8B) where no real weights of that size may be shipped. Depends on the
 * GGUF writer and the block codecs; nothing depends on it but the CLI.
 */
package aether.llm.synth;
