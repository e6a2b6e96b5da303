/**
 * Text generation on top of the engine contract: {@link aether.llm.generate.TextGenerator} drives one
 * {@link aether.llm.engine.InferenceModel} for one or many sequences (prompt prefill in chunks, one decode token per
 * step, sampling, stop tokens and stop strings, max tokens, the "context full" policy, streaming valid UTF-8 text,
 * timings), and {@link aether.llm.generate.ChatSession}, multi-turn chat reusing the KV cache through the longest
 * common token prefix. Requests and results are records ({@link aether.llm.generate.GenerationRequest},
 * {@link aether.llm.generate.Completion}). Depends on {@code aether.llm.engine} (the interfaces only),
 * {@code aether.llm.tokenizer}, {@code aether.llm.chat} and {@code aether.llm.sampling}; never on a particular engine implementation, the CLI
 * or the HTTP server.
 */
package aether.llm.generate;
