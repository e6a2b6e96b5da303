/**
 * Model architectures (GGUF {@code general.architecture}): one class per architecture, each loading its tensors once
 * and building the forward graph of a batch shape in the order the math runs, after llama.cpp's {@code build_*}
 * functions. {@link aether.llm.arch.Architecture#load} picks the class; {@link aether.llm.arch.ForwardGraph} is the
 * built graph with its inputs (token ids, cached keys and values) and outputs (last-token logits, new keys and
 * values). Depends on {@code aether.llm.model} and the scheduler's Graph API; it must not depend on the engine,
 * tokenizers or any executor implementation.
 */
package aether.llm.arch;
