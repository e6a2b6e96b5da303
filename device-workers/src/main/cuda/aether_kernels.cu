// Aether's CUDA kernels: everything one decode step of a llama-architecture model needs, plus the weight repacking and
// the building blocks the GPU tests check one by one against CPU references.
//
// Compiled by nvcc during the Maven build (device-workers, profile "cuda-kernels") into one fatbin: SASS for sm_80 and
// sm_90, PTX for compute_90 (the driver JITs it for newer chips). Loaded by aether.device.cuda.CudaModule through the
// driver API; every kernel is extern "C" so its name is stable.
//
// Layouts (see aether.device.cuda.GpuLayouts for the Java side):
//   * Matrices are row-major with rows = output features, as ggml stores them (ne[0] = K = row length, ne[1] = M).
//   * Q4_0 and Q8_0 are repacked once at upload from the GGUF blocks (2-byte f16 scale + quants, 18 / 34 bytes) into
//     "split" form: all quants first ([M][K/32][16] resp. [32] bytes, so every block's quants are one or two aligned
//     16-byte loads), then all scales ([M][K/32] halves). Same numbers, no rounding.
//   * F16, BF16 and F32 matrices are used as stored (BF16 is the upper half of an f32: widened by a 16-bit shift).
//   * Activations that meet quantized weights are quantized per 32 elements like llama.cpp's q8_1: int8 quants plus a
//     float2 (d, d * sum of the block's quants), so Q4_0's -8 offset is one multiply per block. The sum is of the
//     quantized values, not of the floats as llama.cpp keeps it: with the float sum the offset term is exact but the
//     main term is not, and the rounding errors e_j of the activations end up weighted by the raw nibbles q_j (0..15,
//     mean 7.5) instead of by the weights' q_j - 8 (mean ~0): 2-3x the error against a float64 product. With d * sum(q)
//     the kernel computes exactly W . dequant(quant(x)), which is also what the CPU engine computes.
//   * The KV cache is f16, per layer [slot][kv_head][ctx][head_dim].
//   * Per-token values (token id, position, sequence slot) come from a small device int buffer `params` so that a
//     decode step captured as a CUDA graph stays valid from token to token.
//   * Prompts run in chunks of up to BATCH tokens at consecutive positions params[P_POS] + t of one slot: the kernels
//     below take the token index t from blockIdx.y (or .z for attention) and their activations as [t][width] rows, so
//     one set of launches (and one pass over the weights in the gemv_batch_* kernels) serves the whole chunk. A decode
//     step is the chunk of one token (grid y/z = 1).

#include <cuda_fp16.h>
#include "pdl.cuh"
#include <stdint.h>

#define P_TOKEN 0
#define P_POS 1
#define P_SLOT 2

#define WARP 32
// tokens of a prompt chunk (must match CudaKernels.BATCH)
#define BATCH 8

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// Weights are read once per token: bypass L1 so they do not evict the activations every warp re-reads. Not volatile:
// the compiler may hoist the loads of an unrolled loop ahead of the arithmetic (more bytes in flight per thread).
__device__ __forceinline__ uint4 ld_stream(const void *p) {
    uint4 r;
    asm("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];"
                 : "=r"(r.x), "=r"(r.y), "=r"(r.z), "=r"(r.w)
                 : "l"(p));
    return r;
}

// Block-wide sum over blockDim.x threads (a multiple of 32, at most 1024); every thread gets the result.
__device__ float block_sum(float v) {
    __shared__ float partial[32];
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = (blockDim.x + 31) >> 5;
    v = warp_sum(v);
    __syncthreads();
    if (lane == 0) partial[warp] = v;
    __syncthreads();
    float r = lane < nwarps ? partial[lane] : 0.f;
    return warp_sum(r);
}

__device__ float block_max(float v) {
    __shared__ float partial[32];
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = (blockDim.x + 31) >> 5;
    v = warp_max(v);
    __syncthreads();
    if (lane == 0) partial[warp] = v;
    __syncthreads();
    float r = lane < nwarps ? partial[lane] : -INFINITY;
    return warp_max(r);
}

// One warp quantizes one 32-element block: lane i holds element i. llama.cpp's quantize_q8_1: d = amax / 127,
// q = round(x / d); the offset term's sum is d * sum(q) (see the header: the sum of what the int8 product sees).
__device__ __forceinline__ void quantize_block_warp(float v, int8_t *q, float2 *ds, int lane) {
    float amax = warp_max(fabsf(v));
    float d = amax / 127.f;
    int qi = amax == 0.f ? 0 : (int)roundf(v / d);
    float qsum = warp_sum((float)qi);  // at most 32 * 127 in magnitude: exact in float
    q[lane] = (int8_t)qi;
    if (lane == 0) *ds = make_float2(d, d * qsum);
}

// ---- weight repacking (once, at upload) -----------------------------------------------------------------------------

extern "C" __global__ void repack_q4_0(const uint8_t *__restrict__ raw, uint8_t *__restrict__ qs,
                                       __half *__restrict__ d, long long nblocks) {
    pdl_entry();
    long long b = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (b >= nblocks) return;
    const uint8_t *src = raw + b * 18;
    d[b] = __ushort_as_half((unsigned short)(src[0] | (src[1] << 8)));
    uint8_t *dst = qs + b * 16;
#pragma unroll
    for (int i = 0; i < 16; i++) dst[i] = src[2 + i];
}

extern "C" __global__ void repack_q8_0(const uint8_t *__restrict__ raw, uint8_t *__restrict__ qs,
                                       __half *__restrict__ d, long long nblocks) {
    pdl_entry();
    long long b = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (b >= nblocks) return;
    const uint8_t *src = raw + b * 34;
    d[b] = __ushort_as_half((unsigned short)(src[0] | (src[1] << 8)));
    uint8_t *dst = qs + b * 32;
#pragma unroll
    for (int i = 0; i < 32; i++) dst[i] = src[2 + i];
}

// ---- activation quantization ----------------------------------------------------------------------------------------

// x[n] (n a multiple of 32) -> q8_1-style blocks. 256 threads = 8 blocks of 32 per CUDA block.
extern "C" __global__ void quantize_q8_1(const float *__restrict__ x, int8_t *__restrict__ xq,
                                         float2 *__restrict__ xds, int n) {
    pdl_entry();
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;  // n % 32 == 0: whole warps leave together
    quantize_block_warp(x[i], xq + (i & ~31), xds + (i >> 5), threadIdx.x & 31);
}

// Sum of the squares of x[n] (n a multiple of 4) over the block, every thread gets it: thread t adds the float4s t,
// t + blockDim, ... in that order (sumsq4 each), then block_sum. FRESH: x was written by other blocks of the running
// grid (the fused decode GEMVs, fused_decode.cuh), so it is read through L2 (ld.global.cg). The fused RMSNorm epilogue
// adds in this same order (the same bits as rmsnorm_quant).
__device__ __forceinline__ float sumsq4(float4 v) { return v.x * v.x + v.y * v.y + v.z * v.z + v.w * v.w; }

template <bool FRESH>
__device__ __forceinline__ float rms_sumsq(const float *x, int n) {
    const float4 *x4 = reinterpret_cast<const float4 *>(x);
    float ss = 0.f;
    for (int i = threadIdx.x; i < (n >> 2); i += blockDim.x) {
        float4 v = FRESH ? __ldcg(x4 + i) : x4[i];
        ss += sumsq4(v);
    }
    return block_sum(ss);
}

// RMSNorm of x[n] times w, written as floats (h, may be null) and quantized (xq/xds, may be null). Grid (n / 256
// rounded up, tokens), 256 threads: every block sums the squares of its token's whole row (n floats from L2, four
// per load) and normalizes its own 256 elements, so the row is spread over the chip instead of one block's loop.
extern "C" __global__ void __launch_bounds__(256)
rmsnorm_quant(const float *__restrict__ x, const float *__restrict__ w, float *__restrict__ h,
              int8_t *__restrict__ xq, float2 *__restrict__ xds, int n, float eps) {
    pdl_entry();
    size_t t = blockIdx.y;
    x += t * n;
    if (h) h += t * n;
    if (xq) {
        xq += t * n;
        xds += t * (n >> 5);
    }
    float ss = rms_sumsq<false>(x, n);
    float scale = rsqrtf(ss / n + eps);
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;  // n % 32 == 0: whole warps leave, and no barrier follows
    float v = x[i] * scale * w[i];
    if (h) h[i] = v;
    if (xq) quantize_block_warp(v, xq + (i & ~31), xds + (i >> 5), threadIdx.x & 31);
}

// silu(gate) * up over gu = [gate(ffn) | up(ffn)], written as floats (may be null) and quantized (may be null).
// Token blockIdx.y: rows of 2 * ffn in gu, of ffn in the outputs.
extern "C" __global__ void swiglu_quant(const float *__restrict__ gu, float *__restrict__ out,
                                        int8_t *__restrict__ xq, float2 *__restrict__ xds, int ffn) {
    pdl_entry();
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= ffn) return;
    size_t t = blockIdx.y;
    gu += t * 2 * ffn;
    if (out) out += t * ffn;
    if (xq) {
        xq += t * ffn;
        xds += t * (ffn >> 5);
    }
    float g = gu[i], u = gu[ffn + i];
    float v = g / (1.f + expf(-g)) * u;
    if (out) out[i] = v;
    if (xq) quantize_block_warp(v, xq + (i & ~31), xds + (i >> 5), threadIdx.x & 31);
}

// y[i] = a[i] + b[i]
extern "C" __global__ void add_f32(const float *__restrict__ a, const float *__restrict__ b, float *__restrict__ y,
                                   int n) {
    pdl_entry();
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = a[i] + b[i];
}

// ---- decode GEMV: y[M] = W[M,K] . x[K] (+ add[M]) ---------------------------------------------------------------
// GEMV_WARPS warps per block; `split` (1, 2, 4 or 8, dividing GEMV_WARPS) warps share one output row, each taking
// every split-th stretch of 32 weight blocks, so a block covers GEMV_WARPS / split rows. Small matrices (few rows)
// use split > 1 so that the grid still has thousands of warps, i.e. enough loads in flight to reach HBM bandwidth;
// large ones use split = 1 (no cross-warp reduction). Within a warp, lane l takes blocks l, l + 32*split, ..., so a
// warp's loads are consecutive 16-byte pieces (512 bytes per instruction). `add` may alias `y` (residual in place).

#define GEMV_WARPS 8

// Sums the split warps' partial results of each row and writes y (add may alias y). Every thread of the block must
// call it (it has a barrier).
__device__ __forceinline__ void gemv_finish(float acc, const float *add, float *y, int row, int M, int split) {
    __shared__ float part[GEMV_WARPS];
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    acc = warp_sum(acc);
    if (split == 1) {
        if (lane == 0 && row < M) y[row] = add ? add[row] + acc : acc;
        return;
    }
    if (lane == 0) part[warp] = acc;
    __syncthreads();
    if (lane == 0 && (warp % split) == 0 && row < M) {
        float t = 0.f;
        for (int i = 0; i < split; i++) t += part[warp + i];
        y[row] = add ? add[row] + t : t;
    }
}

#define GEMV_PROLOGUE                                                    \
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;                \
    int row = blockIdx.x * (GEMV_WARPS / split) + warp / split;          \
    int first = (warp % split) * WARP + lane, step = WARP * split;       \
    float acc = 0.f;

// The dot products of one GEMV thread (lane of a warp of row `row`, weight blocks first, first + step, ...): shared by
// the plain kernels here and the fused ones of fused_decode.cuh.
// The int8 dot product of 32 4-bit quants (16 bytes w: element j in the low nibble of byte j, element 16 + j in its
// high nibble, as Q4_0 and the repacked Q4_K sub-blocks store them) with 32 int8 activations (x0: elements 0..15,
// x1: 16..31); the raw nibbles 0..15, so the caller applies the type's offset.
__device__ __forceinline__ int dot_q4_nibbles(const uint4 &w, const int4 &x0, const int4 &x1) {
    int s = 0;
    s = __dp4a((int)(w.x & 0x0F0F0F0Fu), x0.x, s);
    s = __dp4a((int)(w.y & 0x0F0F0F0Fu), x0.y, s);
    s = __dp4a((int)(w.z & 0x0F0F0F0Fu), x0.z, s);
    s = __dp4a((int)(w.w & 0x0F0F0F0Fu), x0.w, s);
    s = __dp4a((int)((w.x >> 4) & 0x0F0F0F0Fu), x1.x, s);
    s = __dp4a((int)((w.y >> 4) & 0x0F0F0F0Fu), x1.y, s);
    s = __dp4a((int)((w.z >> 4) & 0x0F0F0F0Fu), x1.z, s);
    s = __dp4a((int)((w.w >> 4) & 0x0F0F0F0Fu), x1.w, s);
    return s;
}

// One Q4_0 block (16 quant bytes w, scale dw) against the q8_1 activation block b.
__device__ __forceinline__ float q4_0_block_dot(const uint4 &w, float dw, const int8_t *__restrict__ xq,
                                                const float2 *__restrict__ xds, int b) {
    const int4 *xp = reinterpret_cast<const int4 *>(xq + b * 32);
    int4 x0 = xp[0], x1 = xp[1];
    float2 ds = xds[b];
    int s = dot_q4_nibbles(w, x0, x1);
    // sum_j dw*(q_j - 8) * dx*qx_j  =  dw * (dx * sum(q*qx) - 8 * dx*sum(qx))
    return dw * (ds.x * (float)s - 8.f * ds.y);
}

__device__ __forceinline__ float gemv_acc_q4_0(const uint8_t *__restrict__ qs, const __half *__restrict__ d,
                                               const int8_t *__restrict__ xq, const float2 *__restrict__ xds, int row,
                                               int M, int K, int first, int step) {
    float acc = 0.f;
    if (row < M) {
        int nb = K >> 5;
        const uint8_t *wq = qs + (size_t)row * nb * 16;
        const __half *wd = d + (size_t)row * nb;
#pragma unroll 4
        for (int b = first; b < nb; b += step) {
            uint4 w = ld_stream(wq + (size_t)b * 16);
            acc += q4_0_block_dot(w, __half2float(wd[b]), xq, xds, b);
        }
    }
    return acc;
}

extern "C" __global__ void __launch_bounds__(GEMV_WARPS * 32)
gemv_q4_0(const uint8_t *__restrict__ qs, const __half *__restrict__ d, const int8_t *__restrict__ xq,
          const float2 *__restrict__ xds, const float *add, float *y, int M, int K, int split) {
    pdl_entry();
    GEMV_PROLOGUE
    acc = gemv_acc_q4_0(qs, d, xq, xds, row, M, K, first, step);
    gemv_finish(acc, add, y, row, M, split);
}

__device__ __forceinline__ float gemv_acc_q8_0(const uint8_t *__restrict__ qs, const __half *__restrict__ d,
                                               const int8_t *__restrict__ xq, const float2 *__restrict__ xds, int row,
                                               int M, int K, int first, int step) {
    float acc = 0.f;
    if (row < M) {
        int nb = K >> 5;
        const uint8_t *wq = qs + (size_t)row * nb * 32;
        const __half *wd = d + (size_t)row * nb;
#pragma unroll 4
        for (int b = first; b < nb; b += step) {
            uint4 w0 = ld_stream(wq + (size_t)b * 32);
            uint4 w1 = ld_stream(wq + (size_t)b * 32 + 16);
            float dw = __half2float(wd[b]);
            const int4 *xp = reinterpret_cast<const int4 *>(xq + b * 32);
            int4 x0 = xp[0], x1 = xp[1];
            int s = 0;
            s = __dp4a((int)w0.x, x0.x, s);
            s = __dp4a((int)w0.y, x0.y, s);
            s = __dp4a((int)w0.z, x0.z, s);
            s = __dp4a((int)w0.w, x0.w, s);
            s = __dp4a((int)w1.x, x1.x, s);
            s = __dp4a((int)w1.y, x1.y, s);
            s = __dp4a((int)w1.z, x1.z, s);
            s = __dp4a((int)w1.w, x1.w, s);
            acc += dw * xds[b].x * (float)s;
        }
    }
    return acc;
}

extern "C" __global__ void __launch_bounds__(GEMV_WARPS * 32)
gemv_q8_0(const uint8_t *__restrict__ qs, const __half *__restrict__ d, const int8_t *__restrict__ xq,
          const float2 *__restrict__ xds, const float *add, float *y, int M, int K, int split) {
    pdl_entry();
    GEMV_PROLOGUE
    acc = gemv_acc_q8_0(qs, d, xq, xds, row, M, K, first, step);
    gemv_finish(acc, add, y, row, M, split);
}

// The two 16-bit float weight types, read as stored, 8 elements per 16-byte load (a "block" of the GEMVs below).
#define H16_F16 0
#define H16_BF16 1

// The 8 16-bit floats of one 16-byte load widened to f32 (element 2i in f[i].x, 2i + 1 in f[i].y; little-endian, so
// the even element is the low half of each word). F16 through the hardware conversion; BF16 is the upper half of an
// f32, so its widening is a shift (exact, including Inf/NaN), as the CPU's dotBF16 does it.
template <int H16>
__device__ __forceinline__ void widen8(const uint4 &raw, float2 (&f)[4]) {
    if (H16 == H16_F16) {
        const __half2 *h = reinterpret_cast<const __half2 *>(&raw);
#pragma unroll
        for (int i = 0; i < 4; i++) f[i] = __half22float2(h[i]);
    } else {
        const uint32_t words[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
        for (int i = 0; i < 4; i++) {
            f[i] = make_float2(__uint_as_float(words[i] << 16), __uint_as_float(words[i] & 0xFFFF0000u));
        }
    }
}

// 16-bit float weights (F16, BF16) against float activations (no activation rounding); K a multiple of 8.
// A "block" here is 8 16-bit floats (one 16-byte load).
template <int H16>
__device__ __forceinline__ float gemv_acc_h16(const uint16_t *__restrict__ w, const float *__restrict__ x, int row,
                                              int M, int K, int first, int step) {
    float acc = 0.f;
    if (row < M) {
        const uint16_t *wr = w + (size_t)row * K;
        int n8 = K >> 3;
#pragma unroll 4
        for (int c = first; c < n8; c += step) {
            uint4 raw = ld_stream(wr + (size_t)c * 8);
            const float4 *xp = reinterpret_cast<const float4 *>(x + c * 8);
            float4 a = xp[0], b = xp[1];
            float2 f[4];
            widen8<H16>(raw, f);
            acc += f[0].x * a.x + f[0].y * a.y + f[1].x * a.z + f[1].y * a.w + f[2].x * b.x + f[2].y * b.y +
                   f[3].x * b.z + f[3].y * b.w;
        }
    }
    return acc;
}

// F16 weights as the fused decode GEMVs (fused_decode.cuh) read them.
__device__ __forceinline__ float gemv_acc_f16(const __half *__restrict__ w, const float *__restrict__ x, int row,
                                              int M, int K, int first, int step) {
    return gemv_acc_h16<H16_F16>(reinterpret_cast<const uint16_t *>(w), x, row, M, K, first, step);
}

extern "C" __global__ void __launch_bounds__(GEMV_WARPS * 32)
gemv_f16(const uint16_t *__restrict__ w, const float *__restrict__ x, const float *add, float *y, int M, int K,
         int split) {
    pdl_entry();
    GEMV_PROLOGUE
    acc = gemv_acc_h16<H16_F16>(w, x, row, M, K, first, step);
    gemv_finish(acc, add, y, row, M, split);
}

extern "C" __global__ void __launch_bounds__(GEMV_WARPS * 32)
gemv_bf16(const uint16_t *__restrict__ w, const float *__restrict__ x, const float *add, float *y, int M, int K,
          int split) {
    pdl_entry();
    GEMV_PROLOGUE
    acc = gemv_acc_h16<H16_BF16>(w, x, row, M, K, first, step);
    gemv_finish(acc, add, y, row, M, split);
}

// ---- prompt-chunk GEMV: Y[t][M] = W[M,K] . X[t][K] (+ add[t][M]) for t < ntok <= BATCH --------------------------
// The weights are read once for the whole chunk: each warp takes two rows, each lane every 32nd weight block of them,
// and every weight block loaded is multiplied with the block of all BATCH tokens' activations (from L1/L2) before the
// next is loaded. Tokens past ntok read token ntok-1's activations (valid memory) and are not written.
// GEMV_BATCH_WARPS warps (2 rows each) per block. `add` may alias `y`.

#define GEMV_BATCH_WARPS 4

// chunk GEMV weight types (the TYPE of gemv_batch_impl / gemv_rows_impl)
#define GB_Q4_0 0
#define GB_Q8_0 1
#define GB_F16 2
#define GB_BF16 3
#define GB_FLOAT(TYPE) ((TYPE) >= GB_F16)  // 16-bit floats read as stored (x), not int8 blocks (xq/xds)

template <int TYPE>  // GB_Q4_0, GB_Q8_0 (xq/xds), GB_F16, GB_BF16 (x)
__device__ __forceinline__ void gemv_batch_impl(const uint8_t *__restrict__ qs, const __half *__restrict__ d,
                                                const int8_t *__restrict__ xq, const float2 *__restrict__ xds,
                                                const float *__restrict__ x, const float *add, float *y, int M,
                                                int K, int ntok) {
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    int row0 = (blockIdx.x * GEMV_BATCH_WARPS + warp) * 2;
    float acc[2][BATCH];
#pragma unroll
    for (int t = 0; t < BATCH; t++) acc[0][t] = acc[1][t] = 0.f;
    if (row0 >= M) return;  // whole warps leave; no barrier below
    int row1 = row0 + 1 < M ? row0 + 1 : row0;
    int nb = GB_FLOAT(TYPE) ? K >> 3 : K >> 5;  // 16-byte units (8 16-bit floats) or 32-element blocks
    int tok[BATCH];
#pragma unroll
    for (int t = 0; t < BATCH; t++) tok[t] = t < ntok ? t : ntok - 1;
    for (int b = lane; b < nb; b += WARP) {
        if (GB_FLOAT(TYPE)) {
            const uint16_t *w = reinterpret_cast<const uint16_t *>(qs);
            uint4 r0 = ld_stream(w + (size_t)row0 * K + (size_t)b * 8);
            uint4 r1 = ld_stream(w + (size_t)row1 * K + (size_t)b * 8);
            float2 a[4], c[4];
            widen8<TYPE == GB_BF16 ? H16_BF16 : H16_F16>(r0, a);
            widen8<TYPE == GB_BF16 ? H16_BF16 : H16_F16>(r1, c);
#pragma unroll
            for (int t = 0; t < BATCH; t++) {
                const float4 *xp = reinterpret_cast<const float4 *>(x + (size_t)tok[t] * K + b * 8);
                float4 u = xp[0], v = xp[1];
                acc[0][t] += a[0].x * u.x + a[0].y * u.y + a[1].x * u.z + a[1].y * u.w + a[2].x * v.x +
                             a[2].y * v.y + a[3].x * v.z + a[3].y * v.w;
                acc[1][t] += c[0].x * u.x + c[0].y * u.y + c[1].x * u.z + c[1].y * u.w + c[2].x * v.x +
                             c[2].y * v.y + c[3].x * v.z + c[3].y * v.w;
            }
        } else {
            int4 w0a, w0b, w1a, w1b;  // the two rows' 32 int8 weights (Q4_0: nibbles expanded)
            float d0 = __half2float(d[(size_t)row0 * nb + b]), d1 = __half2float(d[(size_t)row1 * nb + b]);
            if (TYPE == GB_Q4_0) {
                uint4 r0 = ld_stream(qs + ((size_t)row0 * nb + b) * 16);
                uint4 r1 = ld_stream(qs + ((size_t)row1 * nb + b) * 16);
                w0a = make_int4(r0.x & 0x0F0F0F0F, r0.y & 0x0F0F0F0F, r0.z & 0x0F0F0F0F, r0.w & 0x0F0F0F0F);
                w0b = make_int4((r0.x >> 4) & 0x0F0F0F0F, (r0.y >> 4) & 0x0F0F0F0F, (r0.z >> 4) & 0x0F0F0F0F,
                                (r0.w >> 4) & 0x0F0F0F0F);
                w1a = make_int4(r1.x & 0x0F0F0F0F, r1.y & 0x0F0F0F0F, r1.z & 0x0F0F0F0F, r1.w & 0x0F0F0F0F);
                w1b = make_int4((r1.x >> 4) & 0x0F0F0F0F, (r1.y >> 4) & 0x0F0F0F0F, (r1.z >> 4) & 0x0F0F0F0F,
                                (r1.w >> 4) & 0x0F0F0F0F);
            } else {
                uint4 r0a = ld_stream(qs + ((size_t)row0 * nb + b) * 32), r0b = ld_stream(qs + ((size_t)row0 * nb + b) * 32 + 16);
                uint4 r1a = ld_stream(qs + ((size_t)row1 * nb + b) * 32), r1b = ld_stream(qs + ((size_t)row1 * nb + b) * 32 + 16);
                w0a = make_int4(r0a.x, r0a.y, r0a.z, r0a.w);
                w0b = make_int4(r0b.x, r0b.y, r0b.z, r0b.w);
                w1a = make_int4(r1a.x, r1a.y, r1a.z, r1a.w);
                w1b = make_int4(r1b.x, r1b.y, r1b.z, r1b.w);
            }
#pragma unroll
            for (int t = 0; t < BATCH; t++) {
                const int4 *xp = reinterpret_cast<const int4 *>(xq + (size_t)tok[t] * K + b * 32);
                int4 xa = xp[0], xb = xp[1];
                float2 ds = xds[(size_t)tok[t] * nb + b];
                int s0 = 0, s1 = 0;
                s0 = __dp4a(w0a.x, xa.x, s0); s0 = __dp4a(w0a.y, xa.y, s0);
                s0 = __dp4a(w0a.z, xa.z, s0); s0 = __dp4a(w0a.w, xa.w, s0);
                s0 = __dp4a(w0b.x, xb.x, s0); s0 = __dp4a(w0b.y, xb.y, s0);
                s0 = __dp4a(w0b.z, xb.z, s0); s0 = __dp4a(w0b.w, xb.w, s0);
                s1 = __dp4a(w1a.x, xa.x, s1); s1 = __dp4a(w1a.y, xa.y, s1);
                s1 = __dp4a(w1a.z, xa.z, s1); s1 = __dp4a(w1a.w, xa.w, s1);
                s1 = __dp4a(w1b.x, xb.x, s1); s1 = __dp4a(w1b.y, xb.y, s1);
                s1 = __dp4a(w1b.z, xb.z, s1); s1 = __dp4a(w1b.w, xb.w, s1);
                if (TYPE == GB_Q4_0) {
                    acc[0][t] += d0 * (ds.x * (float)s0 - 8.f * ds.y);
                    acc[1][t] += d1 * (ds.x * (float)s1 - 8.f * ds.y);
                } else {
                    acc[0][t] += d0 * ds.x * (float)s0;
                    acc[1][t] += d1 * ds.x * (float)s1;
                }
            }
        }
    }
#pragma unroll
    for (int t = 0; t < BATCH; t++) {
        float v0 = warp_sum(acc[0][t]), v1 = warp_sum(acc[1][t]);
        if (lane == 0 && t < ntok) {
            size_t o = (size_t)t * M;
            y[o + row0] = add ? add[o + row0] + v0 : v0;
            if (row1 != row0) y[o + row1] = add ? add[o + row1] + v1 : v1;
        }
    }
}

extern "C" __global__ void __launch_bounds__(GEMV_BATCH_WARPS * 32)
gemv_batch_q4_0(const uint8_t *__restrict__ qs, const __half *__restrict__ d, const int8_t *__restrict__ xq,
                const float2 *__restrict__ xds, const float *add, float *y, int M, int K, int ntok) {
    pdl_entry();
    gemv_batch_impl<GB_Q4_0>(qs, d, xq, xds, nullptr, add, y, M, K, ntok);
}

extern "C" __global__ void __launch_bounds__(GEMV_BATCH_WARPS * 32)
gemv_batch_q8_0(const uint8_t *__restrict__ qs, const __half *__restrict__ d, const int8_t *__restrict__ xq,
                const float2 *__restrict__ xds, const float *add, float *y, int M, int K, int ntok) {
    pdl_entry();
    gemv_batch_impl<GB_Q8_0>(qs, d, xq, xds, nullptr, add, y, M, K, ntok);
}

extern "C" __global__ void __launch_bounds__(GEMV_BATCH_WARPS * 32)
gemv_batch_f16(const uint16_t *__restrict__ w, const float *__restrict__ x, const float *add, float *y, int M, int K,
               int ntok) {
    pdl_entry();
    gemv_batch_impl<GB_F16>(reinterpret_cast<const uint8_t *>(w), nullptr, nullptr, nullptr, x, add, y, M, K, ntok);
}

extern "C" __global__ void __launch_bounds__(GEMV_BATCH_WARPS * 32)
gemv_batch_bf16(const uint16_t *__restrict__ w, const float *__restrict__ x, const float *add, float *y, int M, int K,
                int ntok) {
    pdl_entry();
    gemv_batch_impl<GB_BF16>(reinterpret_cast<const uint8_t *>(w), nullptr, nullptr, nullptr, x, add, y, M, K, ntok);
}

// ---- RoPE and the KV cache ------------------------------------------------------------------------------------------
// qkv = [q (H*D) | k (Hkv*D) | v (Hkv*D)] for the token at params[P_POS] (+ blockIdx.y, the token of a chunk: row
// blockIdx.y of qkv). Blocks 0..H-1 rotate q's heads in place,
// blocks H..H+Hkv-1 rotate k's heads into the cache, the rest copy v's heads into the cache. D threads per block, one
// per dimension. neox = 0: pairs (2i, 2i+1) (llama); 1: pairs (i, i + nrot/2) (NeoX). Dimensions >= nrot pass through.
// ff (may be null): Llama 3 frequency factors, divided into each pair's angle.

// The partner dimension of dimension j < nrot in its rotated pair (see rope_kv).
__device__ __forceinline__ int rope_partner(int j, int nrot, int neox) {
    if (neox) {
        int half = nrot >> 1;
        return j < half ? j + half : j - half;
    }
    return (j & 1) == 0 ? j + 1 : j - 1;
}

// Dimension j < nrot of a head after RoPE at pos: xj its value, xp its partner's (rope_partner). rope_kv and the fused
// qkv GEMV (fused_decode.cuh) share it: the same angles, the same bits.
__device__ __forceinline__ float rope_rotate(float xj, float xp, int j, int pos, const float *ff, int nrot,
                                             float freq_base, float freq_scale, int neox) {
    int pair;
    bool first;
    if (neox) {
        int half = nrot >> 1;
        first = j < half;
        pair = first ? j : j - half;
    } else {
        first = (j & 1) == 0;
        pair = j >> 1;
    }
    float theta_scale = powf(freq_base, -2.0f / nrot);
    float theta = (float)pos * powf(theta_scale, (float)pair);
    if (ff) theta /= ff[pair];
    theta *= freq_scale;
    float c = cosf(theta), s = sinf(theta);
    return first ? xj * c - xp * s : xp * s + xj * c;
}

extern "C" __global__ void rope_kv(float *qkv, __half *__restrict__ kcache, __half *__restrict__ vcache,
                                   const int *__restrict__ params, const float *__restrict__ ff, int H, int Hkv,
                                   int D, int nrot, int ctx, float freq_base, float freq_scale, int neox) {
    pdl_entry();
    int head = blockIdx.x, j = threadIdx.x;
    int pos = params[P_POS] + blockIdx.y, slot = params[P_SLOT];
    qkv += (size_t)blockIdx.y * (H + 2 * Hkv) * D;
    float *src;
    __half *dst = nullptr;
    bool rotate = true;
    if (head < H) {
        src = qkv + head * D;
    } else if (head < H + Hkv) {
        int g = head - H;
        src = qkv + H * D + g * D;
        dst = kcache + (((size_t)slot * Hkv + g) * ctx + pos) * D;
    } else {
        int g = head - H - Hkv;
        src = qkv + (H + Hkv) * D + g * D;
        dst = vcache + (((size_t)slot * Hkv + g) * ctx + pos) * D;
        rotate = false;
    }
    float xj = src[j];
    float out = xj;
    if (rotate && j < nrot) out = rope_rotate(xj, src[rope_partner(j, nrot, neox)], j, pos, ff, nrot, freq_base,
                                              freq_scale, neox);
    __syncthreads();  // q is rotated in place: every thread has read its partner before anyone writes
    if (dst) {
        dst[j] = __float2half(out);
    } else {
        src[j] = out;
    }
}

// ---- decode attention over the f16 cache, split over the cache length ---------------------------------------------
// Grid (H, nsplit, tokens), ATTN_THREADS threads. Block (h, s, t) handles positions [s*chunk, min(len, (s+1)*chunk))
// of query head h (kv head h / (H/Hkv)) of token t (its q at q + t * qstride), len = params[P_POS] + t + 1 (causal:
// the chunk's own keys were stored by rope_kv before), and writes its unnormalised output, max and sum for
// attn_combine at [(t * H + h) * nsplit + s].
// Dynamic shared memory: (D + chunkMax) floats, chunkMax = ceil(ctx / nsplit).

#define ATTN_THREADS 128

extern "C" __global__ void __launch_bounds__(ATTN_THREADS)
attn_split(const float *__restrict__ q, const __half *__restrict__ kcache, const __half *__restrict__ vcache,
           const int *__restrict__ params, float *__restrict__ part_o, float2 *__restrict__ part_ml, int H, int Hkv,
           int D, int ctx, float scale, int qstride) {
    pdl_entry();
    extern __shared__ float smem[];
    float *qs = smem;
    float *sc = smem + D;
    int h = blockIdx.x, s = blockIdx.y, nsplit = gridDim.y, t = blockIdx.z;
    int len = params[P_POS] + t + 1, slot = params[P_SLOT];
    q += (size_t)t * qstride;
    size_t part = ((size_t)t * H + h) * nsplit + s;
    int chunk = (len + nsplit - 1) / nsplit;
    int start = s * chunk, end = min(len, start + chunk);
    int g = h / (H / Hkv);
    const __half *kb = kcache + ((size_t)slot * Hkv + g) * ctx * D;
    const __half *vb = vcache + ((size_t)slot * Hkv + g) * ctx * D;
    for (int i = threadIdx.x; i < D; i += blockDim.x) qs[i] = q[h * D + i] * scale;
    __syncthreads();
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
    for (int p = start + warp; p < end; p += nwarps) {
        const __half2 *kr = reinterpret_cast<const __half2 *>(kb + (size_t)p * D);
        float acc = 0.f;
        for (int i = lane; i < (D >> 1); i += WARP) {
            float2 k2 = __half22float2(kr[i]);
            acc += qs[2 * i] * k2.x + qs[2 * i + 1] * k2.y;
        }
        acc = warp_sum(acc);
        if (lane == 0) sc[p - start] = acc;
    }
    __syncthreads();
    float m = -INFINITY;
    for (int p = start + threadIdx.x; p < end; p += blockDim.x) m = fmaxf(m, sc[p - start]);
    m = block_max(m);
    float l = 0.f;
    for (int p = start + threadIdx.x; p < end; p += blockDim.x) {
        float e = expf(sc[p - start] - m);
        sc[p - start] = e;
        l += e;
    }
    l = block_sum(l);  // its barriers also publish the sc[] writes above
    float *o = part_o + part * D;
    for (int i = threadIdx.x; i < D; i += blockDim.x) {
        float acc = 0.f;
        for (int p = start; p < end; p++) acc += sc[p - start] * __half2float(vb[(size_t)p * D + i]);
        o[i] = acc;
    }
    if (threadIdx.x == 0) part_ml[part] = make_float2(m, l);
}

// Column i of head h of token t: merges the splits' partial results into out (row t of [t][H*D]) and quantizes it
// (xq may be null). Whole warps call it (the quantization is a warp's 32 columns). FRESH: read the partials with
// ld.global.cg (L2), as the fused row attention (decode_rows.cuh) must for the other blocks' writes.
template <bool FRESH>
__device__ __forceinline__ void attn_combine_column(const float *__restrict__ part_o,
                                                    const float2 *__restrict__ part_ml, float *__restrict__ out,
                                                    int8_t *__restrict__ xq, float2 *__restrict__ xds, int D,
                                                    int nsplit, int h, int H, size_t t, int i) {
    part_o += t * H * nsplit * D;
    part_ml += t * H * nsplit;
    out += t * H * D;
    if (xq) {
        xq += t * H * D;
        xds += t * H * D / 32;
    }
    float M = -INFINITY;
    for (int s = 0; s < nsplit; s++) M = fmaxf(M, FRESH ? __ldcg(&part_ml[h * nsplit + s]).x : part_ml[h * nsplit + s].x);
    float L = 0.f, acc = 0.f;
    for (int s = 0; s < nsplit; s++) {
        float2 ml = FRESH ? __ldcg(&part_ml[h * nsplit + s]) : part_ml[h * nsplit + s];
        if (ml.y == 0.f) continue;  // an empty split (m = -inf)
        float f = expf(ml.x - M);
        L += ml.y * f;
        const float *po = &part_o[((size_t)h * nsplit + s) * D + i];
        acc += (FRESH ? __ldcg(po) : *po) * f;
    }
    float v = acc / L;
    out[h * D + i] = v;
    if (xq) quantize_block_warp(v, xq + h * D + (i & ~31), xds + ((h * D + i) >> 5), i & 31);
}

// Grid (H, 1, tokens), D threads (D a multiple of 32): merges the splits of head h of token t into row t of out
// ([t][H*D]), and quantizes it (xq may be null) for the output projection.
extern "C" __global__ void attn_combine(const float *__restrict__ part_o, const float2 *__restrict__ part_ml,
                                        float *__restrict__ out, int8_t *__restrict__ xq, float2 *__restrict__ xds,
                                        int D, int nsplit) {
    pdl_entry();
    attn_combine_column<false>(part_o, part_ml, out, xq, xds, D, nsplit, blockIdx.x, gridDim.x, blockIdx.z,
                               threadIdx.x);
}

// ---- embedding rows -------------------------------------------------------------------------------------------------
// Row t of out[tokens][K] = row tokens[t] of the [rows][K] table, dequantized; t = blockIdx.y. A decode step passes
// params itself as `tokens` (its P_TOKEN is word 0).

extern "C" __global__ void get_row_q4_0(const uint8_t *__restrict__ qs, const __half *__restrict__ d,
                                        const int *__restrict__ tokens, float *__restrict__ out, int K) {
    pdl_entry();
    int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= K) return;
    size_t nb = K >> 5, b = (size_t)tokens[blockIdx.y] * nb + (j >> 5);
    int i = j & 31;
    uint8_t byte = qs[b * 16 + (i & 15)];
    int v = i < 16 ? (byte & 15) : (byte >> 4);
    out[(size_t)blockIdx.y * K + j] = (float)(v - 8) * __half2float(d[b]);
}

extern "C" __global__ void get_row_q8_0(const uint8_t *__restrict__ qs, const __half *__restrict__ d,
                                        const int *__restrict__ tokens, float *__restrict__ out, int K) {
    pdl_entry();
    int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= K) return;
    size_t nb = K >> 5, b = (size_t)tokens[blockIdx.y] * nb + (j >> 5);
    out[(size_t)blockIdx.y * K + j] = (float)(int8_t)qs[b * 32 + (j & 31)] * __half2float(d[b]);
}

extern "C" __global__ void get_row_f16(const __half *__restrict__ w, const int *__restrict__ tokens,
                                       float *__restrict__ out, int K) {
    pdl_entry();
    int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j < K) out[(size_t)blockIdx.y * K + j] = __half2float(w[(size_t)tokens[blockIdx.y] * K + j]);
}

// BF16 rows widened by the shift (exact), as the CPU's BF16 codec decodes them.
extern "C" __global__ void get_row_bf16(const uint16_t *__restrict__ w, const int *__restrict__ tokens,
                                        float *__restrict__ out, int K) {
    pdl_entry();
    int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j < K) {
        uint32_t bits = w[(size_t)tokens[blockIdx.y] * K + j];
        out[(size_t)blockIdx.y * K + j] = __uint_as_float(bits << 16);
    }
}

extern "C" __global__ void get_row_f32(const float *__restrict__ w, const int *__restrict__ tokens,
                                       float *__restrict__ out, int K) {
    pdl_entry();
    int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j < K) out[(size_t)blockIdx.y * K + j] = w[(size_t)tokens[blockIdx.y] * K + j];
}

// Holds the stream for `ns` nanoseconds of GPU time (one thread). KernelProfile launches it before a profiled pass,
// so that the pass's kernels and timing events queue up behind it and then run back to back: without it each timed
// interval would also hold the host's launch latency (the GPU idles between eager launches).
extern "C" __global__ void spin_ns(long long ns) {
    pdl_entry();
    unsigned long long start, now;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(start));
    do {
        __nanosleep(1000);
        asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(now));
    } while (now - start < (unsigned long long)ns);
}

// ---- argmax (greedy sampling on the device) ------------------------------------------------------------------------
// One block per row of x[rows][n] (grid = rows, 1024 threads): out[row] = the first index of the row's largest value
// (ties: the smallest index), the host's greedy sampler (aether.llm.sampling.Argmax). A row holding NaN or +Infinity,
// or only -Infinity, writes -1 instead: the host then downloads that row and reports the culprit exactly as it would
// have on the host path. Lets a greedy decode step download one int per row instead of the row's logits.
extern "C" __global__ void argmax_rows(const float *__restrict__ x, int n, int *__restrict__ out) {
    pdl_entry();
    __shared__ float bv[32];
    __shared__ int bi[32];
    const float *row = x + (size_t)blockIdx.x * n;
    float best = -INFINITY;
    int idx = 0x7fffffff;
    int bad = 0;
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        float v = row[i];
        bad |= (v != v) | (v == INFINITY);
        if (v > best) {  // strictly greater: a thread sees increasing indices, so it keeps the first of equal values
            best = v;
            idx = i;
        }
    }
    bad = __syncthreads_or(bad);
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
        float ov = __shfl_xor_sync(0xffffffffu, best, o);
        int oi = __shfl_xor_sync(0xffffffffu, idx, o);
        if (ov > best || (ov == best && oi < idx)) {
            best = ov;
            idx = oi;
        }
    }
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
    if (lane == 0) {
        bv[warp] = best;
        bi[warp] = idx;
    }
    __syncthreads();
    if (warp == 0) {
        best = lane < nwarps ? bv[lane] : -INFINITY;
        idx = lane < nwarps ? bi[lane] : 0x7fffffff;
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) {
            float ov = __shfl_xor_sync(0xffffffffu, best, o);
            int oi = __shfl_xor_sync(0xffffffffu, idx, o);
            if (ov > best || (ov == best && oi < idx)) {
                best = ov;
                idx = oi;
            }
        }
        // best is -Infinity only when every value is (NaN never wins a comparison and is flagged by bad)
        if (lane == 0) out[blockIdx.x] = bad || best == -INFINITY ? -1 : idx;
    }
}

// ---- batched decode (rows of different sequences): see decode_rows.cuh -------------------------------------------
#include "decode_rows.cuh"

// ---- Q4_K / Q6_K (repacking, decode GEMV, embedding rows) and the tensor-core prefill (GEMM, f16 rows, attention) ----
#include "kquants.cuh"
#include "prefill.cuh"

// ---- decode GEMVs with the next small kernel folded into their last blocks (RMSNorm, SwiGLU, RoPE + KV store) -------
#include "fused_decode.cuh"

// ---- sampling candidates of logits rows (bias, penalties, top-K, exp sum): see candidates.cuh ----------------------
#include "candidates.cuh"
