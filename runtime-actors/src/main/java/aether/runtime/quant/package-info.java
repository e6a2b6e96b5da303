/**
 * ggml block formats: dequantization to f32 (scalar reference and Vector API fast paths) and llama.cpp's reference
 * quantizers. Byte layouts follow ggml-common.h exactly, so blocks are read straight from mapped GGUF files.
 * Depends only on {@link aether.runtime.tensor}.
 */
package aether.runtime.quant;
