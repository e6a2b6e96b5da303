/**
 * ggml block formats: dequantization to f32 (scalar reference and Vector API fast paths) and llama.cpp's reference
 * quantizers. Byte layouts follow ggml-common.h exactly, so blocks are read straight from mapped GGUF files.
 * {@link aether.runtime.quant.BlockCodecs} maps each {@link aether.runtime.tensor.GgmlType} to its stateless codec;
 * {@link aether.runtime.quant.CFloat} holds the C rounding rules (roundf, nearest_int, bf16) that bit-exact ports
 * need. The system property {@code aether.vector=false} forces the scalar paths. Depends only on
 * {@link aether.runtime.tensor}.
 */
package aether.runtime.quant;
