/**
 * Choosing the next token from a step's logits: {@link aether.llm.sampling.SamplerConfig} (temperature, top-k, top-p,
 * min-p, repetition/presence/frequency penalties, logit bias, seed), the stateful {@link aether.llm.sampling.Sampler}
 * that applies them in llama.cpp's order and draws from its own seeded random generator, and
 * {@link aether.llm.sampling.TokenLogprobs}, the log-softmax of the raw logits as OpenAI's {@code logprobs} report it.
 * Allocation-free per token once created (scratch buffers live in a reusable
 * {@link aether.llm.sampling.SamplingWorkspace}). Depends on nothing but the JDK: no model, tokenizer or engine.
 */
package aether.llm.sampling;
