/**
 * LLM inference on a CUDA GPU: {@link aether.llm.engine.cuda.CudaInferenceModel} runs llama-architecture GGUF models
 * (Q4_0, Q8_0, Q4_K, Q6_K, F16, BF16 weights) with Aether's own kernels ({@code aether.device.cuda}): weights uploaded
 * once, an f16 KV cache on the device, the decode step captured as a CUDA graph and replayed per token.
 */
package aether.llm.engine.cuda;
