// Decode GEMVs that also run the small kernel after them (issue 7: a decode step was ~10 launches per layer, and on an
// H100 each kernel boundary of a graph with programmatic dependent launch still costs a few µs of ramp-up and tail):
//
//   gemv_<type>_norm    y = W.x + add, then RMSNorm(y) * w -> h (floats, may be null) and hq (q8_1): the wo and down
//                       GEMVs (residual add) followed by the next RMSNorm (ffn norm, next layer's attention norm, or
//                       the output norm).
//   gemv_<type>_swiglu  gu = W.x over W = [gate | up] (2 * ffn rows), then silu(gate) * up -> act (floats, may be null)
//                       and its q8_1 blocks.
//   gemv_<type>_rope    qkv = W.x, then RoPE on q and k (q in place, k into the cache) and v into the cache: rope_kv.
//   gemv_q4_0_swiglu_rows  the SwiGLU fusion without counters: a block owns a q8_1 group's gate and up rows (below).
//
// The GEMV part is exactly the plain kernel's (gemv_acc_* and gemv_finish, same launch shape), so y has the same bits.
// The epilogue runs in the block that finishes last among those that wrote the values it needs (the whole y for the
// norm, the 32 gate and 32 up rows of a q8_1 block for SwiGLU, the D rows of a head for RoPE), found by an arrival
// counter as in the MMQ split-K sums (arrive_last.cuh: fences, atomicAdd, the last block reads the others' values
// through L2 and zeroes the counter for the next launch). Counters start zeroed (the host clears them once) and one
// launch's counters are not shared with a concurrent launch (one stream).
//
// The epilogues compute what rmsnorm_quant, swiglu_quant and rope_kv compute, through the same device functions
// (rms_sumsq/sumsq4, quantize_block_warp, rope_rotate) or, for the norm's quantization, in another thread layout but
// on the same values (max and integer sums are exact in any order), so the fused and unfused steps agree bitwise.
//
// Arguments, the same for every type (the Java launcher passes one list): a, b = the matrix (Q4_0/Q8_0: quants, f16
// scales; Q4_K/Q6_K: quants, the rest; F16: the halves, null), xq/xds = the q8_1 activation (null for F16), xf = the
// float activation (F16 only), add (may alias y), y, M, K, split as the plain GEMVs, then the counters and the
// epilogue's own arguments.

#include "arrive_last.cuh"

#define GEMV_Q4_0 0
#define GEMV_Q8_0 1
#define GEMV_F16 2
#define GEMV_Q4_K 3
#define GEMV_Q6_K 4
#define GEMV_BF16 5

template <int T>
__device__ __forceinline__ float gemv_acc(const void *__restrict__ a, const void *__restrict__ b,
                                          const int8_t *__restrict__ xq, const float2 *__restrict__ xds,
                                          const float *__restrict__ xf, int row, int M, int K, int first, int step) {
    if constexpr (T == GEMV_Q4_0) {
        return gemv_acc_q4_0(static_cast<const uint8_t *>(a), static_cast<const __half *>(b), xq, xds, row, M, K,
                             first, step);
    } else if constexpr (T == GEMV_Q8_0) {
        return gemv_acc_q8_0(static_cast<const uint8_t *>(a), static_cast<const __half *>(b), xq, xds, row, M, K,
                             first, step);
    } else if constexpr (T == GEMV_F16) {
        return gemv_acc_f16(static_cast<const __half *>(a), xf, row, M, K, first, step);
    } else if constexpr (T == GEMV_BF16) {
        return gemv_acc_h16<H16_BF16>(static_cast<const uint16_t *>(a), xf, row, M, K, first, step);
    } else if constexpr (T == GEMV_Q4_K) {
        return gemv_acc_q4_k(static_cast<const uint8_t *>(a), static_cast<const uint8_t *>(b), xq, xds, row, M, K,
                             first, step);
    } else {
        return gemv_acc_q6_k(static_cast<const uint8_t *>(a), static_cast<const uint8_t *>(b), xq, xds, row, M, K,
                             first, step);
    }
}

// Normalizes the float4 v (elements 4i..4i+3, i < n4 when `in`) and quantizes it: 8 consecutive lanes hold a q8_1
// block of 32 (amax and the integer sum over them by shuffles; the values and the rounding are quantize_block_warp's,
// and max and integer sums are exact in any order). Every lane of the warp must call it.
__device__ __forceinline__ void norm_quantize4(float4 xv, float4 wv, float scale, bool in, int i, float *h,
                                               int8_t *xq, float2 *xds) {
    float4 v = make_float4(0.f, 0.f, 0.f, 0.f);
    if (in) {
        v.x = xv.x * scale * wv.x;
        v.y = xv.y * scale * wv.y;
        v.z = xv.z * scale * wv.z;
        v.w = xv.w * scale * wv.w;
        if (h) reinterpret_cast<float4 *>(h)[i] = v;
    }
    float amax = fmaxf(fmaxf(fabsf(v.x), fabsf(v.y)), fmaxf(fabsf(v.z), fabsf(v.w)));
    amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, 1));
    amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, 2));
    amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, 4));
    const float d = amax / 127.f;
    const int q0 = amax == 0.f ? 0 : (int)roundf(v.x / d);
    const int q1 = amax == 0.f ? 0 : (int)roundf(v.y / d);
    const int q2 = amax == 0.f ? 0 : (int)roundf(v.z / d);
    const int q3 = amax == 0.f ? 0 : (int)roundf(v.w / d);
    int qsum = q0 + q1 + q2 + q3;
    qsum += __shfl_xor_sync(0xffffffffu, qsum, 1);
    qsum += __shfl_xor_sync(0xffffffffu, qsum, 2);
    qsum += __shfl_xor_sync(0xffffffffu, qsum, 4);
    if (in) {
        reinterpret_cast<char4 *>(xq)[i] = make_char4((signed char)q0, (signed char)q1, (signed char)q2,
                                                     (signed char)q3);
        if ((threadIdx.x & 7) == 0) xds[i >> 3] = make_float2(d, d * (float)qsum);
    }
}

// Float4s of x a thread of the norm epilogue keeps in registers: rows up to NORM_KEEP * 4 * GEMV_WARPS * 32 = 4096
// (Llama 8B's dim) are read from L2 once; longer ones twice (rms_sumsq, then again). w is read in the second pass
// (keeping it too took 62 registers: fewer blocks per SM for the GEMV part).
#define NORM_KEEP 4

// RMSNorm of x[n] (written by the whole grid) times w into h (may be null) and q8_1 blocks xq/xds, by one block: the
// sum of squares in rms_sumsq's order (thread t: float4s t, t + blockDim, ... then block_sum), so the same bits as
// rmsnorm_quant; then each thread normalizes and quantizes its float4s (norm_quantize4).
__device__ __forceinline__ void norm_epilogue(const float *x, const float *__restrict__ w, float *h, int8_t *xq,
                                              float2 *xds, int n, float eps) {
    const float4 *x4 = reinterpret_cast<const float4 *>(x);
    const float4 *w4 = reinterpret_cast<const float4 *>(w);
    const int n4 = n >> 2;  // a multiple of 8 (n % 32 == 0): the 8 lanes of a q8_1 block are all in or all out
    if (n4 <= NORM_KEEP * (int)blockDim.x) {
        float4 xv[NORM_KEEP];
        float ss = 0.f;
#pragma unroll
        for (int k = 0; k < NORM_KEEP; k++) {
            const int i = threadIdx.x + k * blockDim.x;
            xv[k] = i < n4 ? __ldcg(x4 + i) : make_float4(0.f, 0.f, 0.f, 0.f);
        }
#pragma unroll
        for (int k = 0; k < NORM_KEEP; k++) {
            if (threadIdx.x + k * blockDim.x < n4) ss += sumsq4(xv[k]);
        }
        ss = block_sum(ss);
        const float scale = rsqrtf(ss / n + eps);
#pragma unroll
        for (int k = 0; k < NORM_KEEP; k++) {
            if (k * blockDim.x >= n4) break;  // block-uniform: the rest of the rounds have no element in
            const int i = threadIdx.x + k * blockDim.x;
            norm_quantize4(xv[k], i < n4 ? w4[i] : make_float4(0.f, 0.f, 0.f, 0.f), scale, i < n4, i, h, xq, xds);
        }
        return;
    }
    const float ss = rms_sumsq<true>(x, n);
    const float scale = rsqrtf(ss / n + eps);
    for (int base = 0; base < n4; base += blockDim.x) {  // every lane of a warp runs every round (shuffles)
        const int i = base + threadIdx.x;
        const bool in = i < n4;
        norm_quantize4(in ? __ldcg(x4 + i) : make_float4(0.f, 0.f, 0.f, 0.f),
                       in ? w4[i] : make_float4(0.f, 0.f, 0.f, 0.f), scale, in, i, h, xq, xds);
    }
}

#define FUSED_GEMV_ARGS                                                                                          \
    const void *__restrict__ a, const void *__restrict__ b, const int8_t *__restrict__ xq,                      \
        const float2 *__restrict__ xds, const float *__restrict__ xf, const float *add, float *y, int M, int K, \
        int split, unsigned *counters

// y = W.x + add, then the RMSNorm of y (M elements, one counter: every block of the grid counts).
template <int T>
__device__ __forceinline__ void gemv_norm_impl(FUSED_GEMV_ARGS, const float *__restrict__ nw, float *h, int8_t *hq,
                                               float2 *hds, float eps) {
    GEMV_PROLOGUE
    acc = gemv_acc<T>(a, b, xq, xds, xf, row, M, K, first, step);
    gemv_finish(acc, add, y, row, M, split);
    if (!arrive_last(counters, gridDim.x)) return;
    norm_epilogue(y, nw, h, hq, hds, M, eps);
}

// gu = W.x over [gate(ffn) | up(ffn)], then silu(gate) * up of the block's 32-element group: counter g counts the
// 2 * 32 / rows-per-block blocks of gate rows 32g.. and up rows ffn + 32g.. (the launcher checks ffn % 32 == 0).
template <int T>
__device__ __forceinline__ void gemv_swiglu_impl(FUSED_GEMV_ARGS, float *act, int8_t *aq, float2 *ads) {
    GEMV_PROLOGUE
    acc = gemv_acc<T>(a, b, xq, xds, xf, row, M, K, first, step);
    gemv_finish(acc, add, y, row, M, split);
    const int rpb = GEMV_WARPS / split, ffn = M >> 1;
    const int r0 = blockIdx.x * rpb;
    const int g = (r0 < ffn ? r0 : r0 - ffn) >> 5;
    if (!arrive_last(counters + g, 2 * (32 / rpb))) return;
    if (threadIdx.x >= 32) return;  // one warp: lane l takes element 32g + l, as swiglu_quant
    const int i = g * 32 + threadIdx.x;
    const float gv = __ldcg(y + i), uv = __ldcg(y + ffn + i);
    const float v = gv / (1.f + expf(-gv)) * uv;
    if (act) act[i] = v;
    quantize_block_warp(v, aq + g * 32, ads + g, threadIdx.x);
}

// qkv = W.x, then rope_kv's work for the block's head (counter per head: D / rows-per-block blocks; the launcher
// checks D % 32 == 0 and D <= the block's threads).
template <int T>
__device__ __forceinline__ void gemv_rope_impl(FUSED_GEMV_ARGS, __half *kcache, __half *vcache,
                                               const int *__restrict__ params, const float *__restrict__ ff, int H,
                                               int Hkv, int D, int nrot, int ctx, float freq_base, float freq_scale,
                                               int neox) {
    GEMV_PROLOGUE
    acc = gemv_acc<T>(a, b, xq, xds, xf, row, M, K, first, step);
    gemv_finish(acc, add, y, row, M, split);
    const int rpb = GEMV_WARPS / split;
    const int head = blockIdx.x * rpb / D;
    if (!arrive_last(counters + head, D / rpb)) return;
    const int pos = params[P_POS], slot = params[P_SLOT];
    float *src = y + (size_t)head * D;
    __half *dst = nullptr;
    bool rotate = true;
    if (head >= H + Hkv) {
        dst = vcache + (((size_t)slot * Hkv + (head - H - Hkv)) * ctx + pos) * D;
        rotate = false;
    } else if (head >= H) {
        dst = kcache + (((size_t)slot * Hkv + (head - H)) * ctx + pos) * D;
    }
    const int j = threadIdx.x;
    float out = 0.f;
    if (j < D) {
        const float xj = __ldcg(src + j);
        out = xj;
        if (rotate && j < nrot) out = rope_rotate(xj, __ldcg(src + rope_partner(j, nrot, neox)), j, pos, ff, nrot,
                                                  freq_base, freq_scale, neox);
    }
    __syncthreads();  // q is rotated in place: every thread has read its partner before anyone writes
    if (j < D) {
        if (dst) {
            dst[j] = __float2half(out);
        } else {
            src[j] = out;
        }
    }
}

// ---- gate|up + SwiGLU without counters (Q4_0): one block owns a q8_1 group's 32 gate and 32 up rows -----------------
// Block g (8 warps) computes gate rows 32g + 4w .. 32g + 4w + 3 and the up rows ffn + the same in warp w, a gate row
// and its up row in one loop (both rows' loads in flight together), then warp 0 finishes silu(gate) * up and its q8_1
// block from shared memory: no arrival protocol, no fence, one wave of ffn / 32 blocks. Each row's sum is
// gemv_acc_q4_0's for split 1 (same terms, same order, warp_sum), so the launcher takes it only where the plain GEMV
// would run with split 1: the same bits as gemv + swiglu_quant.

// Two rows' Q4_0 dot products by one lane (gemv_acc_q4_0's loop for each, interleaved).
__device__ __forceinline__ float2 gemv_acc2_q4_0(const uint8_t *__restrict__ qs, const __half *__restrict__ d,
                                                 const int8_t *__restrict__ xq, const float2 *__restrict__ xds,
                                                 int row0, int row1, int K, int first, int step) {
    float acc0 = 0.f, acc1 = 0.f;
    const int nb = K >> 5;
    const uint8_t *wq0 = qs + (size_t)row0 * nb * 16, *wq1 = qs + (size_t)row1 * nb * 16;
    const __half *wd0 = d + (size_t)row0 * nb, *wd1 = d + (size_t)row1 * nb;
#pragma unroll 4
    for (int b = first; b < nb; b += step) {
        uint4 w0 = ld_stream(wq0 + (size_t)b * 16);
        uint4 w1 = ld_stream(wq1 + (size_t)b * 16);
        float dw0 = __half2float(wd0[b]), dw1 = __half2float(wd1[b]);
        const int4 *xp = reinterpret_cast<const int4 *>(xq + b * 32);
        int4 x0 = xp[0], x1 = xp[1];
        float2 ds = xds[b];
        int s0 = dot_q4_nibbles(w0, x0, x1), s1 = dot_q4_nibbles(w1, x0, x1);
        acc0 += dw0 * (ds.x * (float)s0 - 8.f * ds.y);
        acc1 += dw1 * (ds.x * (float)s1 - 8.f * ds.y);
    }
    return make_float2(acc0, acc1);
}

// Grid ffn / 32, GEMV_WARPS * 32 threads; gu = [gate | up] (2 * ffn floats, written too), act (may be null), aq/ads.
extern "C" __global__ void __launch_bounds__(GEMV_WARPS * 32)
gemv_q4_0_swiglu_rows(const uint8_t *__restrict__ qs, const __half *__restrict__ d, const int8_t *__restrict__ xq,
                      const float2 *__restrict__ xds, float *gu, int ffn, int K, float *act, int8_t *aq,
                      float2 *ads) {
    pdl_entry();
    __shared__ float gate[32], up[32];
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = blockIdx.x;
    constexpr int PER_WARP = 32 / GEMV_WARPS;
#pragma unroll
    for (int r = 0; r < PER_WARP; r++) {
        const int j = warp * PER_WARP + r, row = g * 32 + j;
        float2 acc = gemv_acc2_q4_0(qs, d, xq, xds, row, ffn + row, K, lane, WARP);
        acc.x = warp_sum(acc.x);
        acc.y = warp_sum(acc.y);
        if (lane == 0) {
            gu[row] = acc.x;
            gu[ffn + row] = acc.y;
            gate[j] = acc.x;
            up[j] = acc.y;
        }
    }
    __syncthreads();
    if (warp != 0) return;
    const float gv = gate[lane], uv = up[lane];
    const float v = gv / (1.f + expf(-gv)) * uv;
    const int i = g * 32 + lane;
    if (act) act[i] = v;
    quantize_block_warp(v, aq + g * 32, ads + g, lane);
}

#define FUSED_GEMV_KERNELS(SUFFIX, T, MIN_BLOCKS)                                                                           \
    extern "C" __global__ void __launch_bounds__(GEMV_WARPS * 32, MIN_BLOCKS)                                     \
        gemv_##SUFFIX##_norm(FUSED_GEMV_ARGS, const float *__restrict__ nw, float *h, int8_t *hq, float2 *hds,   \
                             float eps) {                                                                         \
        pdl_entry();                                                                                              \
        gemv_norm_impl<T>(a, b, xq, xds, xf, add, y, M, K, split, counters, nw, h, hq, hds, eps);                \
    }                                                                                                             \
    extern "C" __global__ void __launch_bounds__(GEMV_WARPS * 32, MIN_BLOCKS)                                     \
        gemv_##SUFFIX##_swiglu(FUSED_GEMV_ARGS, float *act, int8_t *aq, float2 *ads) {                           \
        pdl_entry();                                                                                              \
        gemv_swiglu_impl<T>(a, b, xq, xds, xf, add, y, M, K, split, counters, act, aq, ads);                     \
    }                                                                                                             \
    extern "C" __global__ void __launch_bounds__(GEMV_WARPS * 32, MIN_BLOCKS)                                     \
        gemv_##SUFFIX##_rope(FUSED_GEMV_ARGS, __half *kcache, __half *vcache, const int *__restrict__ params,     \
                             const float *__restrict__ ff, int H, int Hkv, int D, int nrot, int ctx,              \
                             float freq_base, float freq_scale, int neox) {                                       \
        pdl_entry();                                                                                              \
        gemv_rope_impl<T>(a, b, xq, xds, xf, add, y, M, K, split, counters, kcache, vcache, params, ff, H, Hkv,  \
                          D, nrot, ctx, freq_base, freq_scale, neox);                                             \
    }

// The last argument: blocks per SM the register budget must allow, those of the plain kernel (sm_90, nvcc 13: gemv_q4_0
// 38 registers, gemv_q8_0 and gemv_q4_k 40 -> 6 blocks of 256 threads; gemv_q6_k 48 -> 5), so the
// epilogue's registers do not cost the GEMV part occupancy (it reads HBM with as many warps as the plain kernel).
// gemv_f16 and gemv_bf16 (32 registers, 8 blocks) get 6: at 8 its norm epilogue spilled, and F16 is not the decode that counts.
FUSED_GEMV_KERNELS(q4_0, GEMV_Q4_0, 6)
FUSED_GEMV_KERNELS(q8_0, GEMV_Q8_0, 6)
FUSED_GEMV_KERNELS(f16, GEMV_F16, 6)
FUSED_GEMV_KERNELS(bf16, GEMV_BF16, 6)
FUSED_GEMV_KERNELS(q4_k, GEMV_Q4_K, 6)
FUSED_GEMV_KERNELS(q6_k, GEMV_Q6_K, 5)
