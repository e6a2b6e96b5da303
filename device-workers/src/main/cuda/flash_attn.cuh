// ---- flash attention of a prompt chunk on tensor cores --------------------------------------------------------------
// Included at the end of prefill.cuh; launched by aether.device.cuda.CudaPrefill.attention (the default for head sizes
// 64 and 128; -Daether.cuda.flashPrefill=false keeps attn_prefill). The same contract as attn_prefill: query head h of
// chunk token t (its f32 query at q + t * qstride + h * D, already rotated) at position P_POS + t of slot P_SLOT sees
// cache positions 0..P_POS + t (rope_kv stored the chunk's own keys and values before); out is f16 rows [t][H * D].
//
// Work split: the query rows of one KV head g are the (token, head) pairs (t, g * G + i), i < G = H / Hkv, numbered
// t * G + i; a block of WARPS (4, or 8: the _w8 kernels) warps takes WARPS * 16 consecutive such rows (16 or 32 tokens
// of Llama's G = 4), so each K/V tile it stages serves all G heads that share it (attn_prefill reads every key once per
// query head); 8 warps stage each tile for twice the rows (half the L2 traffic), 4 give twice the blocks (small
// chunks). Grid (Hkv, ceil(N * G / (WARPS * 16))); the row tiles run last-first (blockIdx.y = 0 is the last tile), so
// the blocks with the longest causal range start first and the short ones fill in behind them.
//
// Per KV tile of FA_BN = 64 cache positions, staged by cp.async into shared memory (rows padded to D + 8 halves: the
// 8 rows of an ldmatrix phase start 16 bytes apart modulo 128, so they hit all 32 banks), double-buffered: tile j + 1
// loads while tile j is multiplied; positions past the block's last visible one are zero-filled (the cache holds stale
// or NaN values there, and 0 * NaN would poison P.V). Each warp owns 16 query rows:
//   * S = Q K^T by mma.m16n8k16 (f16 in, f32 accumulate). Q is read once from global memory into A fragments (f32 ->
//     f16 after scaling by scale * log2(e), so the softmax runs on exp2); K fragments come by ldmatrix.x4 from the
//     [position][d] tile, which is B's column-major layout as it stands.
//   * Causal mask (position > the row's P_POS + t -> -inf) only on tiles that reach past the warp's first row; tiles
//     wholly past the warp's last row are skipped (all their weights would be 0).
//   * Online softmax in registers: a thread holds 2 values of each 8-column n-tile for rows g and g + 8 (lane =
//     4 g + i); the row max is reduced over the 4 lanes of a row by two shuffles; the running sum stays per thread
//     and is reduced once at the end. The first tile always holds position 0, which every row sees, so the running
//     max is finite from the first tile on (no -inf - -inf).
//   * O += P V: the S accumulators of n-tiles 2k, 2k + 1 are exactly the A fragment of k-step k (rows g, g + 8;
//     columns 2i, 2i + 1, 2i + 8, 2i + 9), rounded to f16; V's B fragments come by ldmatrix.x4.trans from the
//     [position][d] tile.
// Fragments (PTX ISA, mma.m16n8k16 .f16, lane = 4 g + i): A {row g k 2i..2i+1, row g+8 k 2i.., row g k 2i+8..,
// row g+8 k 2i+8..}; B {k 2i..2i+1, k 2i+8..2i+9} of column g; C {(g, 2i), (g, 2i+1), (g+8, 2i), (g+8, 2i+1)}.
// ldmatrix: lane L gives the address of row L % 8 of matrix L / 8; lane l receives row l / 4, halves 2(l % 4), +1 of
// each matrix (.trans: halves at rows 2(l % 4), +1 of column l / 4).
// Shared memory: 2 stages x (K, V) x 64 x (D + 8) halves: 36,864 bytes (D = 64) or 69,632 (D = 128; above the 48 KiB
// default, so CudaPrefill raises the kernel's limit), whatever the warp count. Must match CudaPrefill.FlashLaunch.

#define FA_BN 64

#ifndef FLASH_HOST_EMULATION  // flash_emulate.cpp (tests) replaces the warp-collective instructions on the CPU
__device__ __forceinline__ void fa_ldmatrix_x4_trans(uint32_t addr, uint32_t &r0, uint32_t &r1, uint32_t &r2,
                                                     uint32_t &r3) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];"
                 : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3)
                 : "r"(addr)
                 : "memory");
}
#endif

template <int D, int WARPS>
struct FaTile {
    static constexpr int THREADS = WARPS * 32;
    static constexpr int BM = WARPS * 16;                  // query rows of a block
    static constexpr int LD = D + 8;                       // halves of a shared row
    static constexpr int ROW = LD * 2;                     // its bytes
    static constexpr int BYTES = FA_BN * ROW;              // one K or V tile
    static constexpr int SMEM = 2 * 2 * BYTES;             // two stages of K and V
    static constexpr int CHUNKS = D / 8;                   // 16-byte chunks of a cache row
    static constexpr int LOADS = FA_BN * CHUNKS / THREADS;  // chunks per thread per tile (of K, and of V)
    static_assert(FA_BN * CHUNKS % THREADS == 0, "whole chunks per thread");
};
static_assert(FaTile<64, 4>::SMEM == 36864 && FaTile<64, 8>::SMEM == 36864,
              "CudaPrefill.FlashLaunch shared bytes, D = 64");
static_assert(FaTile<128, 4>::SMEM == 69632 && FaTile<128, 8>::SMEM == 69632,
              "CudaPrefill.FlashLaunch shared bytes, D = 128");
static_assert(FaTile<64, 4>::ROW % 16 == 0 && FaTile<128, 4>::ROW % 16 == 0, "16-byte aligned shared rows");

template <int D, int WARPS>
__device__ __forceinline__ void attn_flash_impl(const float *__restrict__ q, const __half *__restrict__ kcache,
                                                const __half *__restrict__ vcache, const int *__restrict__ params,
                                                __half *__restrict__ out, int N, int H, int Hkv, int ctx, float scale,
                                                int qstride) {
    using T = FaTile<D, WARPS>;
    constexpr int NT = FA_BN / 8;  // n-tiles of S (8 positions each)
    constexpr int KS = D / 16;     // k-steps of Q K^T
    extern __shared__ __align__(16) uint8_t fa_smem[];
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, g = lane >> 2, i4 = lane & 3;
    const int G = H / Hkv, kvh = blockIdx.x, total = N * G;
    const int row0 = (gridDim.y - 1 - blockIdx.y) * T::BM;  // the last row tile first
    const int pos0 = params[P_POS], slot = params[P_SLOT];
    // the block reads cache positions [0, lenMax): up to its last token's position
    const int lenMax = pos0 + (min(row0 + T::BM, total) - 1) / G + 1;
    const int tiles = (lenMax + FA_BN - 1) / FA_BN;
    const __half *kb = kcache + ((size_t)slot * Hkv + kvh) * ctx * D;
    const __half *vb = vcache + ((size_t)slot * Hkv + kvh) * ctx * D;
    const uint32_t smem0 = mmq_smem_address(fa_smem);

    // Issues the cp.async of tile j's keys and values into stage s (not committed); zeros past lenMax.
    auto load = [&](int j, int s) {
        const uint32_t ks = smem0 + s * 2 * T::BYTES, vs = ks + T::BYTES;
#pragma unroll
        for (int p = 0; p < T::LOADS; p++) {
            const int c = tid + p * T::THREADS, r = c / T::CHUNKS, ch = c % T::CHUNKS;
            const int pos = j * FA_BN + r;
            const bool ok = pos < lenMax;
            const size_t off = ok ? (size_t)pos * D + ch * 8 : 0;
            mmq_cp_async16(ks + r * T::ROW + ch * 16, kb + off, ok);
            mmq_cp_async16(vs + r * T::ROW + ch * 16, vb + off, ok);
        }
    };
    load(0, 0);
    mmq_cp_async_commit();

    // This thread's two rows (g and g + 8 of the warp's 16): token, head, the last position each sees. Rows past the
    // chunk (t >= N) compute with a zero query and the last token's mask, and are not stored.
    const int wrow = row0 + warp * 16;
    const bool live = wrow < total;  // the warp has a row of the chunk
    const int wFirst = pos0 + min(wrow / G, N - 1), wLast = pos0 + min((wrow + 15) / G, N - 1);
    const int ra = wrow + g, rb = ra + 8;
    const int ta = ra / G, tb = rb / G, ha = kvh * G + ra % G, hb = kvh * G + rb % G;
    const bool va = ta < N, vb2 = tb < N;
    const int lastA = pos0 + min(ta, N - 1), lastB = pos0 + min(tb, N - 1);

    // Q as A fragments of the KS k-steps, pre-scaled into the log2 domain
    const float qscale = scale * 1.4426950408889634f;
    uint32_t qf[KS][4];
    {
        const float *qa = q + (size_t)min(ta, N - 1) * qstride + (size_t)ha * D + 2 * i4;
        const float *qb = q + (size_t)min(tb, N - 1) * qstride + (size_t)hb * D + 2 * i4;
#pragma unroll
        for (int kk = 0; kk < KS; kk++) {
            const float2 z = make_float2(0.f, 0.f);
            const float2 x0 = va ? *reinterpret_cast<const float2 *>(qa + 16 * kk) : z;
            const float2 x1 = vb2 ? *reinterpret_cast<const float2 *>(qb + 16 * kk) : z;
            const float2 x2 = va ? *reinterpret_cast<const float2 *>(qa + 16 * kk + 8) : z;
            const float2 x3 = vb2 ? *reinterpret_cast<const float2 *>(qb + 16 * kk + 8) : z;
            qf[kk][0] = gm_pack(x0.x * qscale, x0.y * qscale);
            qf[kk][1] = gm_pack(x1.x * qscale, x1.y * qscale);
            qf[kk][2] = gm_pack(x2.x * qscale, x2.y * qscale);
            qf[kk][3] = gm_pack(x3.x * qscale, x3.y * qscale);
        }
    }

    float o[D / 8][4];
#pragma unroll
    for (int n = 0; n < D / 8; n++) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.f;
    float ma = -INFINITY, mb = -INFINITY, la = 0.f, lb = 0.f;

    // ldmatrix lane offsets within a stage (lane L: row L % 8 of matrix L / 8). K, for n-tiles 2p, 2p + 1 of k-step
    // kk: matrices {positions 0-7, d 0-7}, {0-7, d 8-15}, {8-15, d 0-7}, {8-15, d 8-15} = b0, b1 of n-tile 2p, b0, b1
    // of 2p + 1. V (transposed), for d n-tiles 2p, 2p + 1 of k-step k: {positions 0-7, d 0-7}, {8-15, d 0-7},
    // {0-7, d 8-15}, {8-15, d 8-15}.
    const int lr = lane & 7, lq = lane >> 3;
    const uint32_t kLane = ((lq >> 1) * 8 + lr) * T::ROW + (lq & 1) * 16;
    const uint32_t vLane = ((lq & 1) * 8 + lr) * T::ROW + (lq >> 1) * 16;

    for (int j = 0; j < tiles; j++) {
        // one barrier per tile: after it tile j has landed for all, and every warp is done with tile j - 1, whose
        // stage then takes tile j + 1
        mmq_cp_async_wait<0>();
        __syncthreads();
        if (j + 1 < tiles) load(j + 1, (j + 1) & 1);
        mmq_cp_async_commit();
        const int kv0 = j * FA_BN;
        if (!live || kv0 > wLast) continue;  // warp-uniform: no row of the warp sees this tile
        const uint32_t ks = smem0 + (j & 1) * 2 * T::BYTES, vs = ks + T::BYTES;

        float s[NT][4];
#pragma unroll
        for (int n = 0; n < NT; n++) s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.f;
#pragma unroll
        for (int kk = 0; kk < KS; kk++) {
#pragma unroll
            for (int p = 0; p < NT / 2; p++) {
                uint32_t b[4];
                mmq_ldmatrix_x4(ks + kLane + p * 16 * T::ROW + kk * 32, b[0], b[1], b[2], b[3]);
                gm_mma(s[2 * p], qf[kk], b);
                gm_mma(s[2 * p + 1], qf[kk], b + 2);
            }
        }

        if (kv0 + FA_BN - 1 > wFirst) {  // the diagonal: some position here is past some row's last
#pragma unroll
            for (int n = 0; n < NT; n++) {
#pragma unroll
                for (int e = 0; e < 4; e++) {
                    const int pos = kv0 + n * 8 + 2 * i4 + (e & 1);
                    if (pos > (e < 2 ? lastA : lastB)) s[n][e] = -INFINITY;
                }
            }
        }

        float mxa = ma, mxb = mb;
#pragma unroll
        for (int n = 0; n < NT; n++) {
            mxa = fmaxf(mxa, fmaxf(s[n][0], s[n][1]));
            mxb = fmaxf(mxb, fmaxf(s[n][2], s[n][3]));
        }
        mxa = fmaxf(mxa, __shfl_xor_sync(0xffffffffu, mxa, 1));
        mxa = fmaxf(mxa, __shfl_xor_sync(0xffffffffu, mxa, 2));
        mxb = fmaxf(mxb, __shfl_xor_sync(0xffffffffu, mxb, 1));
        mxb = fmaxf(mxb, __shfl_xor_sync(0xffffffffu, mxb, 2));
        const float ca = exp2f(ma - mxa), cb = exp2f(mb - mxb);  // 0 on the first tile (ma = -inf, mxa finite)
        ma = mxa;
        mb = mxb;
        float sa = 0.f, sb = 0.f;
#pragma unroll
        for (int n = 0; n < NT; n++) {
            s[n][0] = exp2f(s[n][0] - ma);
            s[n][1] = exp2f(s[n][1] - ma);
            s[n][2] = exp2f(s[n][2] - mb);
            s[n][3] = exp2f(s[n][3] - mb);
            sa += s[n][0] + s[n][1];
            sb += s[n][2] + s[n][3];
        }
        la = la * ca + sa;
        lb = lb * cb + sb;
#pragma unroll
        for (int n = 0; n < D / 8; n++) {
            o[n][0] *= ca;
            o[n][1] *= ca;
            o[n][2] *= cb;
            o[n][3] *= cb;
        }

#pragma unroll
        for (int k = 0; k < FA_BN / 16; k++) {
            const uint32_t pa[4] = {gm_pack(s[2 * k][0], s[2 * k][1]), gm_pack(s[2 * k][2], s[2 * k][3]),
                                    gm_pack(s[2 * k + 1][0], s[2 * k + 1][1]),
                                    gm_pack(s[2 * k + 1][2], s[2 * k + 1][3])};
#pragma unroll
            for (int p = 0; p < D / 16; p++) {
                uint32_t b[4];
                fa_ldmatrix_x4_trans(vs + vLane + k * 16 * T::ROW + p * 32, b[0], b[1], b[2], b[3]);
                gm_mma(o[2 * p], pa, b);
                gm_mma(o[2 * p + 1], pa, b + 2);
            }
        }
    }
    mmq_cp_async_wait<0>();

    la += __shfl_xor_sync(0xffffffffu, la, 1);
    la += __shfl_xor_sync(0xffffffffu, la, 2);
    lb += __shfl_xor_sync(0xffffffffu, lb, 1);
    lb += __shfl_xor_sync(0xffffffffu, lb, 2);
    const float ia = 1.f / la, ib = 1.f / lb;
    __half *oa = out + (size_t)ta * H * D + (size_t)ha * D + 2 * i4;
    __half *ob = out + (size_t)tb * H * D + (size_t)hb * D + 2 * i4;
#pragma unroll
    for (int n = 0; n < D / 8; n++) {
        if (va) *reinterpret_cast<__half2 *>(oa + n * 8) = __floats2half2_rn(o[n][0] * ia, o[n][1] * ia);
        if (vb2) *reinterpret_cast<__half2 *>(ob + n * 8) = __floats2half2_rn(o[n][2] * ib, o[n][3] * ib);
    }
}

// Grid (Hkv, ceil(N * H / Hkv / (WARPS * 16))), WARPS * 32 threads, FaTile<D, WARPS>::SMEM dynamic shared bytes;
// attn_prefill's arguments without D (the kernel's name fixes it and the warp count: 4, or 8 for _w8).
#define FLASH_KERNEL(name, D, WARPS)                                                                             \
    extern "C" __global__ void __launch_bounds__(WARPS * 32)                                                    \
        name(const float *__restrict__ q, const __half *__restrict__ kcache, const __half *__restrict__ vcache,  \
             const int *__restrict__ params, __half *__restrict__ out, int N, int H, int Hkv, int ctx,           \
             float scale, int qstride) {                                                                         \
        pdl_entry();                                                                                             \
        attn_flash_impl<D, WARPS>(q, kcache, vcache, params, out, N, H, Hkv, ctx, scale, qstride);               \
    }

FLASH_KERNEL(attn_prefill_flash_d64, 64, 4)
FLASH_KERNEL(attn_prefill_flash_d128, 128, 4)
FLASH_KERNEL(attn_prefill_flash_d64_w8, 64, 8)
FLASH_KERNEL(attn_prefill_flash_d128_w8, 128, 8)
