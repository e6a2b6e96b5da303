/**
 * The OpenAI-compatible inference service: {@link aether.llm.server.ServingEngine} (one engine-loop thread that owns
 * the {@link aether.llm.engine.InferenceModel} and runs continuous batching: sequences join and leave between steps,
 * prompts are prefilled in chunks beside running decodes, admission is bounded and a cancelled request frees its KV
 * blocks before the next step), the HTTP layer {@link aether.llm.server.OpenAiServer} (Pekko HTTP; request parsing
 * that names the offending field, OpenAI error JSON, SSE streaming, API keys, per-key rate limits), Prometheus
 * {@link aether.llm.server.ServerMetrics} and the {@code serve} command. Depends only on the engine contract in
 * {@code aether.llm.engine}, the tokenizer and chat templates; never on a particular {@code InferenceModel}.
 */
package aether.llm.server;
