// Prompt prefill on tensor cores: a GEMM Y[N][M] (+= add) = X[N][K] . W[M][K]^T with f16 activations X, weights of
// any type the upload keeps (Q4_0, Q8_0, F16, BF16, Q4_K, Q6_K) dequantized tile by tile into shared memory as f16, and
// mma.sync m16n8k16 (f16 x f16 -> f32; sm_80+, so the same code runs on A100 and H100), plus what a chunk of up to a
// few hundred tokens needs around it: RMSNorm and SwiGLU writing f16 rows, and a causal attention over the cache for
// the chunk's queries. Included at the end of aether_kernels.cu; uses its helpers (block_sum, warp_sum, P_POS).
//
// GEMM tiling: a block of 256 threads (8 warps) computes BM = 128 weight rows x BN tokens (32, 64 or 128: the grid's
// x walks the tokens, so the blocks that share a weight tile run together and read it once from HBM), stepping K by
// 32 = one quantization sub-block per weight row. Both tiles are double-buffered in shared memory (rows padded to 40
// halves: the fragment loads of a warp hit 32 different banks); the next K step's global loads are issued before the
// current step's mma and stored (dequantized) after it, one barrier per step. Warps split the tile into
// (8 / (BN/32)) x (BN/32) warp tiles of (BM / that) x 32, i.e. MT m16 tiles x 4 n8 tiles each.

#define GM_BM 128
#define GM_BK 32
#define GM_LD 40
#define GM_THREADS 256

// weight types of the GEMM (must match CudaPrefill.gemmKernel)
#define WT_Q4_0 0
#define WT_Q8_0 1
#define WT_F16 2
#define WT_Q4_K 3
#define WT_Q6_K 4
#define WT_BF16 5

// BF16 weights are converted to f16 per tile (bf16 -> f32 is the shift, f32 -> f16 a rounding) and multiplied by the
// same f16 mma as every other type, rather than by a bf16 mma (m16n8k16 .bf16) with bf16 activations:
//   * accuracy: f16 keeps 11 significant bits where bf16 keeps 8, so every bf16 weight in f16's normal range
//     (2^-14 <= |w| <= 65504) converts exactly, smaller ones lose at most 2^-25 absolutely (f16 subnormals; nothing
//     against weights of ~1e-2), and the activations stay f16 (relative rounding 2^-12) instead of bf16 (2^-9): the
//     product is closer to the CPU engine's, which multiplies BF16 weights with f32 activations. What f16 cannot hold
//     is |w| >= 65536 (bf16 bits 0x4780 up; it would become Inf): the loader checks every BF16 matrix on the device
//     (bf16_beyond_f16) and runs a model holding such a weight without this GEMM (its prompts go through the chunk
//     GEMVs, which read BF16 as f32).
//   * speed: the same tensor-core rate for f16 and bf16, the same 2 bytes a weight from HBM, and the conversion is
//     two integer ops and one cvt per pair of weights, once per weight per BN tokens (the Q8_0 path does more).
//   * one activation format: the f16 rows (rmsnorm_f16, swiglu_f16, attn_prefill) serve every weight type.

__device__ __forceinline__ uint32_t gm_pack(float a, float b) {
    __half2 h = __floats2half2_rn(a, b);
    return *reinterpret_cast<uint32_t *>(&h);
}

// What one thread carries from global memory to its half of one weight row's 32-element sub-block: part p = 0 takes
// the elements 0..7 and 16..23 of the nibble types (bytes 0..7 of the 16 lo bytes) or 0..15 of Q8_0/F16/BF16, p = 1
// the rest.
struct GmStage {
    uint4 q;    // nibble types: q.x, q.y = 8 lo bytes; Q8_0: 16 int8; F16/BF16: 8 16-bit floats
    uint4 q2;   // F16/BF16: the next 8
    uint2 h;    // Q6_K: the sub-block's high bits
    float s0, s1;
};

template <int TYPE>
__device__ __forceinline__ void gm_load_w(GmStage &st, const uint8_t *__restrict__ wq, const uint8_t *__restrict__ rest,
                                          int row, int b, int p, int M, int K) {
    size_t nb = K >> 5, sub = (size_t)row * nb + b;
    if (TYPE == WT_Q4_0) {
        uint2 v = __ldg(reinterpret_cast<const uint2 *>(wq + sub * 16 + 8 * p));
        st.q = make_uint4(v.x, v.y, 0, 0);
        st.s0 = __half2float(reinterpret_cast<const __half *>(rest)[sub]);
    } else if (TYPE == WT_Q8_0) {
        st.q = __ldg(reinterpret_cast<const uint4 *>(wq + sub * 32 + 16 * p));
        st.s0 = __half2float(reinterpret_cast<const __half *>(rest)[sub]);
    } else if (TYPE == WT_F16 || TYPE == WT_BF16) {
        const uint4 *src = reinterpret_cast<const uint4 *>(wq + ((size_t)row * K + (size_t)b * 32 + 16 * p) * 2);
        st.q = __ldg(src);
        st.q2 = __ldg(src + 1);
    } else if (TYPE == WT_Q4_K) {
        uint2 v = __ldg(reinterpret_cast<const uint2 *>(wq + sub * 16 + 8 * p));
        st.q = make_uint4(v.x, v.y, 0, 0);
        uchar2 sm = reinterpret_cast<const uchar2 *>(rest)[sub];
        float2 dm = __half22float2(reinterpret_cast<const __half2 *>(rest + (size_t)M * nb * 2)[sub >> 3]);
        st.s0 = dm.x * (float)sm.x;
        st.s1 = dm.y * (float)sm.y;
    } else {  // Q6_K
        uint2 v = __ldg(reinterpret_cast<const uint2 *>(wq + sub * 16 + 8 * p));
        st.q = make_uint4(v.x, v.y, 0, 0);
        st.h = __ldg(reinterpret_cast<const uint2 *>(rest) + sub);
        char2 sc = reinterpret_cast<const char2 *>(rest + (size_t)M * nb * 8)[sub];
        float d = __half2float(reinterpret_cast<const __half *>(rest + (size_t)M * nb * 10)[sub >> 3]);
        st.s0 = d * (float)sc.x;
        st.s1 = d * (float)sc.y;
    }
}

// Dequantizes the staged values into row `dst` (GM_BK halves) of the weight tile.
template <int TYPE>
__device__ __forceinline__ void gm_store_w(const GmStage &st, __half *dst, int p) {
    if (TYPE == WT_F16) {
        *reinterpret_cast<uint4 *>(dst + 16 * p) = st.q;
        *reinterpret_cast<uint4 *>(dst + 16 * p + 8) = st.q2;
    } else if (TYPE == WT_BF16) {
        // word i of q holds elements 2i (low half) and 2i + 1; bf16 -> f32 by the shift, then rounded to f16
        const uint32_t words[8] = {st.q.x, st.q.y, st.q.z, st.q.w, st.q2.x, st.q2.y, st.q2.z, st.q2.w};
        uint32_t out[8];
#pragma unroll
        for (int i = 0; i < 8; i++) {
            out[i] = gm_pack(__uint_as_float(words[i] << 16), __uint_as_float(words[i] & 0xFFFF0000u));
        }
        *reinterpret_cast<uint4 *>(dst + 16 * p) = make_uint4(out[0], out[1], out[2], out[3]);
        *reinterpret_cast<uint4 *>(dst + 16 * p + 8) = make_uint4(out[4], out[5], out[6], out[7]);
    } else if (TYPE == WT_Q8_0) {
        uint32_t out[8];
        const uint32_t words[4] = {st.q.x, st.q.y, st.q.z, st.q.w};
#pragma unroll
        for (int i = 0; i < 8; i++) {
            uint32_t w = words[i >> 1];
            int sh = (i & 1) * 16;
            float a = (float)(int8_t)((w >> sh) & 0xFF), b = (float)(int8_t)((w >> (sh + 8)) & 0xFF);
            out[i] = gm_pack(a * st.s0, b * st.s0);
        }
        *reinterpret_cast<uint4 *>(dst + 16 * p) = make_uint4(out[0], out[1], out[2], out[3]);
        *reinterpret_cast<uint4 *>(dst + 16 * p + 8) = make_uint4(out[4], out[5], out[6], out[7]);
    } else {
        // nibble types: byte c (0..7) of st.q.x/y holds element 8p + c (low nibble) and 16 + 8p + c (high nibble)
        float lo[8], hi[8];
#pragma unroll
        for (int c = 0; c < 8; c++) {
            uint32_t byte = ((c < 4 ? st.q.x : st.q.y) >> (8 * (c & 3))) & 0xFF;
            int a = byte & 15, b = byte >> 4;
            if (TYPE == WT_Q4_0) {
                lo[c] = (float)(a - 8) * st.s0;
                hi[c] = (float)(b - 8) * st.s0;
            } else if (TYPE == WT_Q4_K) {
                lo[c] = st.s0 * (float)a - st.s1;
                hi[c] = st.s0 * (float)b - st.s1;
            } else {  // Q6_K: element e's high bits are bits 2(e/4).. of byte e%4 of its half's word
                int w = 2 * p + (c >> 2), sh = 8 * (c & 3) + 2 * w;
                a |= ((st.h.x >> sh) & 3) << 4;
                b |= ((st.h.y >> sh) & 3) << 4;
                lo[c] = st.s0 * (float)(a - 32);
                hi[c] = st.s1 * (float)(b - 32);
            }
        }
        *reinterpret_cast<uint4 *>(dst + 8 * p) =
            make_uint4(gm_pack(lo[0], lo[1]), gm_pack(lo[2], lo[3]), gm_pack(lo[4], lo[5]), gm_pack(lo[6], lo[7]));
        *reinterpret_cast<uint4 *>(dst + 16 + 8 * p) =
            make_uint4(gm_pack(hi[0], hi[1]), gm_pack(hi[2], hi[3]), gm_pack(hi[4], hi[5]), gm_pack(hi[6], hi[7]));
    }
}

__device__ __forceinline__ void gm_mma(float *c, const uint32_t *a, const uint32_t *b) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

// Y[n][m] = (add ? add[n][m] : 0) + sum_k X[n][k] * W[m][k]; K a multiple of 32 (of 256 for the K-quants); rows of Y
// and add are ldy floats apart (ldy = M, or wider when W is one part of a stacked matrix of mixed types and Y the
// stack's output); `add` may alias Y (each element is read and written by the same thread).
template <int TYPE, int BN>
__device__ __forceinline__ void gemm_impl(const uint8_t *__restrict__ wq, const uint8_t *__restrict__ rest,
                                          const __half *__restrict__ X, const float *add, float *Y, int M, int N,
                                          int K, int ldy) {
    constexpr int WN = BN / 32, WM = 8 / WN, MT = GM_BM / WM / 16;
    constexpr int XCHUNKS = BN * GM_BK / 8;  // 16-byte pieces of the activation tile
    constexpr int XPER = (XCHUNKS + GM_THREADS - 1) / GM_THREADS;
    __shared__ __align__(16) __half As[2][GM_BM * GM_LD];
    __shared__ __align__(16) __half Xs[2][BN * GM_LD];

    int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, g = lane >> 2, tig = lane & 3;
    int wm = warp / WN, wn = warp % WN;
    int n0 = blockIdx.x * BN, m0 = blockIdx.y * GM_BM;
    int wrow = tid >> 1, wpart = tid & 1;
    int grow = min(m0 + wrow, M - 1);  // rows past M load a real row; their results are not stored
    int KT = K / GM_BK;

    GmStage st;
    uint4 xr[XPER];
    auto load = [&](int kt) {
        gm_load_w<TYPE>(st, wq, rest, grow, kt, wpart, M, K);
#pragma unroll
        for (int i = 0; i < XPER; i++) {
            int c = tid + i * GM_THREADS;
            int n = c >> 2, part = c & 3;
            xr[i] = make_uint4(0, 0, 0, 0);
            if (c < XCHUNKS && n0 + n < N) {
                xr[i] = __ldg(reinterpret_cast<const uint4 *>(X + (size_t)(n0 + n) * K + (size_t)kt * GM_BK + part * 8));
            }
        }
    };
    auto store = [&](int buf) {
        gm_store_w<TYPE>(st, &As[buf][wrow * GM_LD], wpart);
#pragma unroll
        for (int i = 0; i < XPER; i++) {
            int c = tid + i * GM_THREADS;
            if (c < XCHUNKS) *reinterpret_cast<uint4 *>(&Xs[buf][(c >> 2) * GM_LD + (c & 3) * 8]) = xr[i];
        }
    };

    float acc[MT][4][4];
#pragma unroll
    for (int i = 0; i < MT; i++)
#pragma unroll
        for (int j = 0; j < 4; j++)
#pragma unroll
            for (int e = 0; e < 4; e++) acc[i][j][e] = 0.f;

    load(0);
    store(0);
    __syncthreads();
    for (int kt = 0; kt < KT; kt++) {
        int buf = kt & 1;
        if (kt + 1 < KT) load(kt + 1);
#pragma unroll
        for (int kk = 0; kk < GM_BK; kk += 16) {
            uint32_t a[MT][4], b[4][2];
#pragma unroll
            for (int mt = 0; mt < MT; mt++) {
                const __half *p = &As[buf][(wm * MT * 16 + mt * 16 + g) * GM_LD + kk + 2 * tig];
                a[mt][0] = *reinterpret_cast<const uint32_t *>(p);
                a[mt][1] = *reinterpret_cast<const uint32_t *>(p + 8 * GM_LD);
                a[mt][2] = *reinterpret_cast<const uint32_t *>(p + 8);
                a[mt][3] = *reinterpret_cast<const uint32_t *>(p + 8 * GM_LD + 8);
            }
#pragma unroll
            for (int nt = 0; nt < 4; nt++) {
                const __half *p = &Xs[buf][(wn * 32 + nt * 8 + g) * GM_LD + kk + 2 * tig];
                b[nt][0] = *reinterpret_cast<const uint32_t *>(p);
                b[nt][1] = *reinterpret_cast<const uint32_t *>(p + 8);
            }
#pragma unroll
            for (int mt = 0; mt < MT; mt++)
#pragma unroll
                for (int nt = 0; nt < 4; nt++) gm_mma(acc[mt][nt], a[mt], b[nt]);
        }
        if (kt + 1 < KT) store(buf ^ 1);
        __syncthreads();
    }

    // c0, c1: row g, columns 2*tig, 2*tig + 1; c2, c3: row g + 8
#pragma unroll
    for (int mt = 0; mt < MT; mt++) {
#pragma unroll
        for (int nt = 0; nt < 4; nt++) {
            int m = m0 + wm * MT * 16 + mt * 16 + g, n = n0 + wn * 32 + nt * 8 + 2 * tig;
#pragma unroll
            for (int e = 0; e < 4; e++) {
                int mm = m + (e >> 1) * 8, nn = n + (e & 1);
                if (mm < M && nn < N) {
                    size_t o = (size_t)nn * ldy + mm;
                    Y[o] = add ? add[o] + acc[mt][nt][e] : acc[mt][nt][e];
                }
            }
        }
    }
}

#define GEMM_KERNEL(name, TYPE, BN)                                                                              \
    extern "C" __global__ void __launch_bounds__(GM_THREADS)                                                     \
        name(const uint8_t *__restrict__ wq, const uint8_t *__restrict__ rest, const __half *__restrict__ X,     \
             const float *add, float *Y, int M, int N, int K, int ldy) {                                 \
        pdl_entry();                                                                                             \
        gemm_impl<TYPE, BN>(wq, rest, X, add, Y, M, N, K, ldy);                                                  \
    }

GEMM_KERNEL(gemm_q4_0_32, WT_Q4_0, 32)
GEMM_KERNEL(gemm_q4_0_64, WT_Q4_0, 64)
GEMM_KERNEL(gemm_q4_0_128, WT_Q4_0, 128)
GEMM_KERNEL(gemm_q8_0_32, WT_Q8_0, 32)
GEMM_KERNEL(gemm_q8_0_64, WT_Q8_0, 64)
GEMM_KERNEL(gemm_q8_0_128, WT_Q8_0, 128)
GEMM_KERNEL(gemm_f16_32, WT_F16, 32)
GEMM_KERNEL(gemm_f16_64, WT_F16, 64)
GEMM_KERNEL(gemm_f16_128, WT_F16, 128)
GEMM_KERNEL(gemm_bf16_32, WT_BF16, 32)
GEMM_KERNEL(gemm_bf16_64, WT_BF16, 64)
GEMM_KERNEL(gemm_bf16_128, WT_BF16, 128)
GEMM_KERNEL(gemm_q4_k_32, WT_Q4_K, 32)
GEMM_KERNEL(gemm_q4_k_64, WT_Q4_K, 64)
GEMM_KERNEL(gemm_q4_k_128, WT_Q4_K, 128)
GEMM_KERNEL(gemm_q6_k_32, WT_Q6_K, 32)
GEMM_KERNEL(gemm_q6_k_64, WT_Q6_K, 64)
GEMM_KERNEL(gemm_q6_k_128, WT_Q6_K, 128)

// Sets *beyond to 1 when one of the n bf16 values at w has |v| >= 65536 (or is Inf/NaN): a value the GEMM's f16 tiles
// cannot hold (see WT_BF16). Grid-stride, 8 values per 16-byte load (n a multiple of 8); *beyond is zeroed by the host.
extern "C" __global__ void bf16_beyond_f16(const uint16_t *__restrict__ w, long long n, int *__restrict__ beyond) {
    pdl_entry();
    const uint4 *w8 = reinterpret_cast<const uint4 *>(w);
    long long n8 = n >> 3;
    int found = 0;
    long long stride = (long long)gridDim.x * blockDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n8; i += stride) {
        uint4 v = w8[i];
        const uint32_t words[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
        for (int j = 0; j < 4; j++) {
            found |= (words[j] & 0x7FFFu) >= 0x4780u;
            found |= ((words[j] >> 16) & 0x7FFFu) >= 0x4780u;
        }
    }
    if (__syncthreads_or(found) && threadIdx.x == 0) atomicExch(beyond, 1);
}

// ---- f16 activation rows for the GEMM ---------------------------------------------------------------------------

// out16[t][n] = f16(x[t][n]); grid (n / 256 rounded up, tokens).
extern "C" __global__ void convert_f16(const float *__restrict__ x, __half *__restrict__ out, int n) {
    pdl_entry();
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) out[(size_t)blockIdx.y * n + i] = __float2half(x[(size_t)blockIdx.y * n + i]);
}

// RMSNorm of row t = blockIdx.y of x[t][n] times w, as f16 (rmsnorm_quant's arithmetic, then rounded).
extern "C" __global__ void __launch_bounds__(256)
rmsnorm_f16(const float *__restrict__ x, const float *__restrict__ w, __half *__restrict__ out, int n, float eps) {
    pdl_entry();
    size_t t = blockIdx.y;
    x += t * n;
    out += t * n;
    const float4 *x4 = reinterpret_cast<const float4 *>(x);
    float ss = 0.f;
    for (int i = threadIdx.x; i < (n >> 2); i += blockDim.x) {
        float4 v = x4[i];
        ss += v.x * v.x + v.y * v.y + v.z * v.z + v.w * v.w;
    }
    ss = block_sum(ss);
    float scale = rsqrtf(ss / n + eps);
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) out[i] = __float2half(x[i] * scale * w[i]);
}

// silu(gate) * up of row t = blockIdx.y of gu = [t][gate(ffn) | up(ffn)], as f16 rows of ffn.
extern "C" __global__ void swiglu_f16(const float *__restrict__ gu, __half *__restrict__ out, int ffn) {
    pdl_entry();
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= ffn) return;
    size_t t = blockIdx.y;
    float g = gu[t * 2 * ffn + i], u = gu[t * 2 * ffn + ffn + i];
    out[t * ffn + i] = __float2half(g / (1.f + expf(-g)) * u);
}

// ---- causal attention of a prompt chunk over the f16 cache ----------------------------------------------------------
// Grid (H, ceil(N / 4)), 128 threads: warp w of block (h, y) is query head h of token t = 4y + w, at position
// params[P_POS] + t, which sees cache positions 0..P_POS + t (the chunk's own keys were stored by rope_kv before).
// Lane l holds dimensions l*PER .. l*PER + PER - 1 (PER = D / 32) of the query and of the output; one pass over the
// keys with an online softmax (running max and sum, exp2 of log2(e)-scaled scores), four keys per step. Consecutive
// tokens of one head share a block, so they read the same key rows from L1. out: f16 rows [t][H*D] for the output
// projection's GEMM.

template <int PER>
__device__ __forceinline__ float attn_dot(const float (&qv)[PER], const __half *kr) {
    float s = 0.f;
#pragma unroll
    for (int i = 0; i < PER; i++) s += qv[i] * __half2float(kr[i]);
    return s;
}

// Keys go four at a time: their dot products and warp sums are independent, so the four shuffle chains overlap
// instead of each key waiting for the last one's (one rescale of the running sums per four keys); the tail one by one.
template <int PER>
__device__ __forceinline__ void attn_prefill_impl(const float *__restrict__ q, const __half *__restrict__ kb,
                                                  const __half *__restrict__ vb, __half *__restrict__ out, int len,
                                                  float scale, int lane) {
    float qv[PER], acc[PER];
#pragma unroll
    for (int i = 0; i < PER; i++) {
        qv[i] = q[lane * PER + i] * scale * 1.4426950408889634f;
        acc[i] = 0.f;
    }
    float m = -INFINITY, l = 0.f;
    const int D = PER * 32;
    kb += lane * PER;
    vb += lane * PER;
    int p = 0;
    for (; p + 4 <= len; p += 4) {
        float s0 = attn_dot<PER>(qv, kb + (size_t)p * D), s1 = attn_dot<PER>(qv, kb + (size_t)(p + 1) * D);
        float s2 = attn_dot<PER>(qv, kb + (size_t)(p + 2) * D), s3 = attn_dot<PER>(qv, kb + (size_t)(p + 3) * D);
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) {
            s0 += __shfl_xor_sync(0xffffffffu, s0, o);
            s1 += __shfl_xor_sync(0xffffffffu, s1, o);
            s2 += __shfl_xor_sync(0xffffffffu, s2, o);
            s3 += __shfl_xor_sync(0xffffffffu, s3, o);
        }
        float mn = fmaxf(fmaxf(m, fmaxf(s0, s1)), fmaxf(s2, s3));
        float corr = exp2f(m - mn);
        float e0 = exp2f(s0 - mn), e1 = exp2f(s1 - mn), e2 = exp2f(s2 - mn), e3 = exp2f(s3 - mn);
        l = l * corr + ((e0 + e1) + (e2 + e3));
        const __half *v0 = vb + (size_t)p * D;
#pragma unroll
        for (int i = 0; i < PER; i++) {
            acc[i] = acc[i] * corr + e0 * __half2float(v0[i]) + e1 * __half2float(v0[D + i]) +
                     e2 * __half2float(v0[2 * D + i]) + e3 * __half2float(v0[3 * D + i]);
        }
        m = mn;
    }
    for (; p < len; p++) {
        float s = warp_sum(attn_dot<PER>(qv, kb + (size_t)p * D));
        float mn = fmaxf(m, s);
        float corr = exp2f(m - mn), e = exp2f(s - mn);
        l = l * corr + e;
        const __half *vr = vb + (size_t)p * D;
#pragma unroll
        for (int i = 0; i < PER; i++) acc[i] = acc[i] * corr + e * __half2float(vr[i]);
        m = mn;
    }
    float inv = 1.f / l;
#pragma unroll
    for (int i = 0; i < PER; i++) out[lane * PER + i] = __float2half(acc[i] * inv);
}

extern "C" __global__ void __launch_bounds__(128)
attn_prefill(const float *__restrict__ q, const __half *__restrict__ kcache, const __half *__restrict__ vcache,
             const int *__restrict__ params, __half *__restrict__ out, int N, int H, int Hkv, int D, int ctx,
             float scale, int qstride) {
    pdl_entry();
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    int t = blockIdx.y * 4 + warp, h = blockIdx.x;
    if (t >= N) return;
    int len = params[P_POS] + t + 1, slot = params[P_SLOT];
    int g = h / (H / Hkv);
    const __half *kb = kcache + ((size_t)slot * Hkv + g) * ctx * D;
    const __half *vb = vcache + ((size_t)slot * Hkv + g) * ctx * D;
    q += (size_t)t * qstride + (size_t)h * D;
    out += (size_t)t * H * D + (size_t)h * D;
    switch (D >> 5) {
        case 1: attn_prefill_impl<1>(q, kb, vb, out, len, scale, lane); break;
        case 2: attn_prefill_impl<2>(q, kb, vb, out, len, scale, lane); break;
        case 3: attn_prefill_impl<3>(q, kb, vb, out, len, scale, lane); break;
        case 4: attn_prefill_impl<4>(q, kb, vb, out, len, scale, lane); break;
        case 5: attn_prefill_impl<5>(q, kb, vb, out, len, scale, lane); break;
        case 6: attn_prefill_impl<6>(q, kb, vb, out, len, scale, lane); break;
        case 7: attn_prefill_impl<7>(q, kb, vb, out, len, scale, lane); break;
        case 8: attn_prefill_impl<8>(q, kb, vb, out, len, scale, lane); break;
        default: break;  // the launcher refuses other head sizes
    }
}

// ---- the same attention on tensor cores (flash-style tiles; the default for head sizes 64 and 128) ----------------
#include "flash_attn.cuh"
