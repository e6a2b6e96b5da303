// ---- row GEMM on int8 tensor cores, MMQ-style tiling (Q4_0, Q8_0) -------------------------------------------------
// Included at the end of decode_rows.cuh; launched by aether.device.cuda.CudaRowKernels (the default row GEMV for
// Q4_0/Q8_0). Y[t][M] = W[M,K] . X[t][K] (+ add[t][M]) for t < rows, the same math as gemv_rows_mma_impl: per 32-block
// b, the exact integer dot product c = sum((q_w [- 8 for Q4_0]) * q_x) times d_w[m,b] * d_x[t,b], summed over b.
//
// Why another kernel: gemv_rows_mma_impl covers 16 weight rows per block and reads every activation row's quants and
// scales from L2 with 4-byte loads for each of them, ~7x the weight bytes at 64 rows. Here one block of MMQ_WARPS (8)
// warps covers MMQ_BM = 128 weight rows x MMQ_BN = 64 activation rows:
//   * K is walked in tiles of KB 32-blocks (Q4_0: 8 blocks = 128 quant bytes a weight row; Q8_0: 4 blocks = 128 bytes
//     too). For each tile the whole block stages, with 16-byte cp.async (coalesced: 8 threads read one row's 128
//     contiguous bytes), the 128 weight rows' quants, the activation rows' quants (only the 8-row groups that exist),
//     and both sides' scales (weights' as halves, activations' as floats); three stages, so tiles kt + 1 and kt + 2
//     load while tile kt is multiplied (with two, each tile waited for a whole memory latency: 55 us for 28672 x 4096
//     at 1 row, 1.2 TB/s).
//   * Each warp multiplies its 16 weight rows with all 64 activation rows (8 MMA n-tiles) from shared memory: the
//     activation tile is read from global memory once per 128 weight rows (per tile at 64 rows, Q4_0: 18 KB of weight
//     quants and scales, 20 KB of activation quants and scales, the latter from L2; Q8_0: 34 KB and 10 KB).
//   * Shared memory: three stages of [weights | activations | weight scales | activation scales], 111,168 bytes
//     (Q4_0) or 80,448 (Q8_0): two blocks per SM on an H100 (228 KB; the registers allow no third), one on an A100.
//   * Fragments come from shared memory by ldmatrix (8 x 16-byte rows per matrix; thread (g, i) receives bytes
//     4i..4i+3 of row g). Rows are stored unpadded (128 or 256 bytes: every row starts at bank 0) with their 16-byte
//     chunks swizzled, chunk c of row r at chunk c ^ (r & 7): the 8 consecutive rows of one ldmatrix phase read one
//     logical chunk from 8 different physical chunks of one aligned group of 8, so they hit all 32 banks once.
//   * Blocks: ceil(M / 128) x ceil(rows / 64) x splits. When M alone gives fewer than MMQ_SPLIT_TARGET blocks (2 per
//     SM of an H100), K is split into `splits` contiguous ranges of tiles, chosen on the host from (M, K) only; each
//     split writes its partial sums to a workspace [split][rows][M] and the last block of an output tile to finish
//     adds them in split order (mmq_reduce_last; no second launch: that was 96 launches x 6.6 us per Llama-8B pass).
//
// Fragments (PTX ISA, mma.m16n8k32 .s8, lane = 4 * g + i): A regs {row g k 4i.., row g+8 k 4i.., row g k 16+4i..,
// row g+8 k 16+4i..}; B regs {k 4i.., k 16+4i..} of column g; C {(g, 2i), (g, 2i+1), (g+8, 2i), (g+8, 2i+1)}.
// M of the MMA = weight rows, N = activation rows, K = the 32 elements of one block. So:
//   * Q8_0 A: one ldmatrix.x4 at {rows 0-7, rows 8-15} x {bytes 0-15, bytes 16-31} of the block gives a0, a1, a2, a3.
//   * Q4_0 A: a block row is 16 bytes, byte j = element j (low nibble) and j + 16 (high nibble); one ldmatrix.x4 at
//     {rows 0-7, rows 8-15} x {block b, block b + 1} gives a word per row and block, whose low nibbles are a0/a1 and
//     high nibbles a2/a3 (minus 8: signed -8..7, as gemv_rows_mma_impl).
//   * B: activation rows are [t][k] bytes, so one ldmatrix.x4 at {rows 16p..16p+7, rows 16p+8..16p+15} x {bytes 0-15,
//     bytes 16-31} of the block gives b0, b1 of n-tiles 2p and 2p + 1.
//
// Why every output's bits are independent of `rows` and of the row's position in the pass: output (t, m) is summed as
//   acc = 0; for tiles kt of its split, for b in the tile in order: acc = fma(d_w * d_x, float(c), acc)
// where c is an exact integer (the MMA's column for activation row t sees only that row's quants) and the products use
// explicit round-to-nearest intrinsics (no contraction choices left to the compiler), then the splits' partial sums
// are added in split order (split count and tile ranges from (M, K) only). The number of rows only decides which
// n-tiles are computed and stored, never the order or the operands of another row's sums. The integer c converts to
// float exactly through the MMA accumulator: starting it at 0x4B400000 (1.5 * 2^23 as float bits) makes the result's
// bits the float 1.5 * 2^23 + c (|c| <= 32 * 128 * 127 < 2^22), and subtracting 1.5 * 2^23 is exact: float(c) in one
// FP32 instruction, where I2F runs at a fraction of the FP32 rate. At 64 rows these three FP32 instructions per output
// and block (sub, mul, fma) are the kernel's main cost, not the weight read.

#include "arrive_last.cuh"

#define MMQ_WARPS 8
#define MMQ_BM (MMQ_WARPS * 16)
#define MMQ_BN 64
#define MMQ_WROW 128  // shared bytes of a weight row's tile
#define MMQ_MAGIC 0x4B400000
#define MMQ_MAGIC_F 12582912.0f

template <int N>
struct MmqInt {  // a compile-time count for a generic lambda
    static constexpr int value = N;
};

template <int TYPE>  // 0 = Q4_0, 1 = Q8_0
struct MmqTile {
    static constexpr int KB = TYPE == 0 ? 8 : 4;       // 32-blocks of a K tile (128 weight quant bytes a row)
    static constexpr int XROW = KB * 32;               // shared bytes of an activation row's tile
    static constexpr int W_BYTES = MMQ_BM * MMQ_WROW;  // weight quants [BM][WROW]
    static constexpr int X_BYTES = MMQ_BN * XROW;      // activation quants [BN][XROW]
    // Scales, [KB][rows + pad]: the MMA loop reads 8 consecutive weight rows (dw) or one float2 per lane pair (dx) of
    // one block b; the loads from global memory run b-fastest (a row's scales are contiguous there), so a warp stores
    // 32 / KB rows x KB blocks: a stride of rows + 32 / KB elements spreads those 32 stores over the banks. Weight
    // scales stay halves (converted exactly when read: 2 KB less per Q4_0 stage, which lets three stages of two
    // blocks fit an SM's 228 KB), activation scales are floats.
    static constexpr int DW_STRIDE = MMQ_BM + 32 / KB;
    static constexpr int DX_STRIDE = MMQ_BN + 32 / KB;
    static constexpr int DW_BYTES = KB * DW_STRIDE * 2;
    static constexpr int DX_BYTES = KB * DX_STRIDE * 4;
    static constexpr int STAGE = W_BYTES + X_BYTES + DW_BYTES + DX_BYTES;
    static constexpr int STAGES = 3;  // tiles kt + 1 and kt + 2 load while tile kt is multiplied
    static constexpr int SMEM = STAGES * STAGE;
    static constexpr int W_CHUNKS = MMQ_BM * 8 / (MMQ_WARPS * 32);      // 16-byte weight chunks per thread
    static constexpr int DW_LOADS = KB * MMQ_BM / (MMQ_WARPS * 32);     // weight scales per thread
    static constexpr int DX_LOADS = KB * MMQ_BN / (MMQ_WARPS * 32);     // activation scales per thread
};
static_assert(MmqTile<0>::SMEM == 111168, "CudaRowKernels.MMQ_SMEM_Q4_0");
static_assert(MmqTile<1>::SMEM == 80448, "CudaRowKernels.MMQ_SMEM_Q8_0");
static_assert(2 * (MmqTile<0>::SMEM + 1024) <= 228 * 1024, "two Q4_0 blocks per H100 SM (1 KB reserved per block)");
static_assert(MmqTile<0>::STAGE % 16 == 0 && MmqTile<1>::STAGE % 16 == 0, "16-byte aligned stages");
static_assert((MmqTile<0>::W_BYTES + MmqTile<0>::X_BYTES + MmqTile<0>::DW_BYTES) % 8 == 0 &&
                  (MmqTile<1>::W_BYTES + MmqTile<1>::X_BYTES + MmqTile<1>::DW_BYTES) % 8 == 0,
              "float2 activation scale reads");

#ifndef MMQ_HOST_EMULATION  // a CPU emulation of the warp-collective instructions can replace these (tests)
__device__ __forceinline__ void mmq_cp_async16(uint32_t dst, const void *src, bool valid) {
    // src-size 0 writes 16 zero bytes and reads nothing (src stays a valid address all the same)
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(valid ? 16 : 0)
                 : "memory");
}

__device__ __forceinline__ void mmq_cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }

// waits until at most `pending` of this thread's committed cp.async groups are still in flight
template <int pending>
__device__ __forceinline__ void mmq_cp_async_wait() {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(pending) : "memory");
}

__device__ __forceinline__ void mmq_ldmatrix_x4(uint32_t addr, uint32_t &r0, uint32_t &r1, uint32_t &r2,
                                                uint32_t &r3) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];"
                 : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3)
                 : "r"(addr)
                 : "memory");
}

__device__ __forceinline__ uint32_t mmq_smem_address(const void *p) { return (uint32_t)__cvta_generic_to_shared(p); }
#endif

// acc += d * float(c), c an MMA result started at MMQ_MAGIC
__device__ __forceinline__ float mmq_fma(float dw, float dx, int c, float acc) {
    return __fmaf_rn(__fmul_rn(dw, dx), __fsub_rn(__int_as_float(c), MMQ_MAGIC_F), acc);
}

// Split-K epilogue of an output tile (weight rows mbase.., activation rows base..), after this block stored its split's
// partial sums to ws[split][rows][M]: the block of the tile's splits that arrives last at counters[tile] adds the
// partial sums in split order 0..splits-1 (whichever block that is: the order and the operands are those of the other
// arrival orders, so the bits do not depend on the scheduling) and writes y (+ add; add may be y: each output is read
// and written by one thread), then zeroes the counter for the next launch (all the tile's blocks have arrived by then;
// the next launch starts after this grid completes, pdl_entry). The usual threadfence reduction (arrive_last.cuh): the
// last block reads the partial sums through L2 (__ldcg).
__device__ __forceinline__ void mmq_reduce_last(const float *ws, unsigned *counters, const float *add, float *y,
                                                int M, int rows, int splits, int mbase, int base) {
    extern __shared__ __align__(16) uint8_t mmq_smem[];
    volatile int *last = reinterpret_cast<volatile int *>(mmq_smem);  // the stages are free: all tiles are consumed
    if (!arrive_last(counters + blockIdx.y * gridDim.x + blockIdx.x, (unsigned)splits, last)) return;
    // Only the tiles' last blocks work here while the rest of the chip idles (the next kernel's blocks wait for this
    // grid), so the reads are made wide and many: with M % 4 == 0 each thread sums 4 consecutive weight rows (one
    // 16-byte load a split; ws rows are 16-byte aligned then) for 4 activation rows at once. Same order, same bits.
    const int n = min(MMQ_BN, rows - base);
    if ((M & 3) == 0) {
        constexpr int U = 4;
        const int row = mbase + (threadIdx.x & 31) * 4;
        if (row >= M) return;  // row + 3 < M otherwise
        for (int t0 = threadIdx.x >> 5; t0 < n; t0 += MMQ_WARPS * U) {
            float4 s[U];
#pragma unroll
            for (int u = 0; u < U; u++)
                if (t0 + MMQ_WARPS * u < n)
                    s[u] = __ldcg(reinterpret_cast<const float4 *>(ws + (size_t)(base + t0 + MMQ_WARPS * u) * M + row));
            for (int p = 1; p < splits; p++) {
#pragma unroll
                for (int u = 0; u < U; u++) {
                    if (t0 + MMQ_WARPS * u < n) {
                        const float4 v = __ldcg(reinterpret_cast<const float4 *>(
                            ws + ((size_t)p * rows + base + t0 + MMQ_WARPS * u) * M + row));
                        s[u].x += v.x;
                        s[u].y += v.y;
                        s[u].z += v.z;
                        s[u].w += v.w;
                    }
                }
            }
#pragma unroll
            for (int u = 0; u < U; u++) {
                if (t0 + MMQ_WARPS * u < n) {
                    const size_t o = (size_t)(base + t0 + MMQ_WARPS * u) * M + row;  // y, add: scalar (any alignment)
                    y[o] = add ? add[o] + s[u].x : s[u].x;
                    y[o + 1] = add ? add[o + 1] + s[u].y : s[u].y;
                    y[o + 2] = add ? add[o + 2] + s[u].z : s[u].z;
                    y[o + 3] = add ? add[o + 3] + s[u].w : s[u].w;
                }
            }
        }
        return;
    }
    for (int e = threadIdx.x; e < n * MMQ_BM; e += MMQ_WARPS * 32) {
        const int row = mbase + e % MMQ_BM, t = base + e / MMQ_BM;  // consecutive threads: consecutive weight rows
        if (row < M) {
            const size_t o = (size_t)t * M + row;
            float s = __ldcg(ws + o);
            for (int p = 1; p < splits; p++) s += __ldcg(ws + ((size_t)p * rows + t) * M + row);
            y[o] = add ? add[o] + s : s;
        }
    }
}

template <int TYPE>
__device__ __forceinline__ void gemv_rows_mmq_impl(const uint8_t *__restrict__ qs, const __half *__restrict__ d,
                                                   const int8_t *__restrict__ xq, const float2 *__restrict__ xds,
                                                   const float *add, float *y, float *ws, unsigned *counters, int M,
                                                   int K, int rows, int splits) {
    using T = MmqTile<TYPE>;
    constexpr int KB = T::KB;
    extern __shared__ __align__(16) uint8_t mmq_smem[];
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, g = lane >> 2, i4 = lane & 3;
    const int nb = K >> 5;
    const int nkt = (nb + KB - 1) / KB;
    const int split = blockIdx.z;
    const int kt0 = (int)((long long)split * nkt / splits), kt1 = (int)((long long)(split + 1) * nkt / splits);
    const int mbase = blockIdx.x * MMQ_BM;
    const int base = blockIdx.y * MMQ_BN;
    const int groups = (min(MMQ_BN, rows - base) + 7) >> 3;  // 8-row n-tiles that exist; the same in every thread
    // n-tiles multiplied: groups rounded up to 1, 2, 4 or 8, so that the MMA loop is compiled for a fixed count (four
    // versions). The extra n-tiles multiply stale shared memory with zero activation scales into accumulators that are
    // never stored: they cost time at 3, 5-7 rows of a 64-row tile but change no stored value, and each output's sum
    // stays a function of its own row (row independence).
    const int ngroups = groups <= 1 ? 1 : groups <= 2 ? 2 : groups <= 4 ? 4 : 8;
    const uint32_t smem0 = mmq_smem_address(mmq_smem);

    // Issues the cp.async of tile kt's quants into stage s (not committed).
    auto load_quants = [&](int kt, int s) {
        uint32_t st = smem0 + s * T::STAGE;
#pragma unroll
        for (int p = 0; p < T::W_CHUNKS; p++) {
            int c = tid + p * MMQ_WARPS * 32, r = c >> 3, ch = c & 7;
            int m = mbase + r;
            int blk = kt * KB + (TYPE == 0 ? ch : ch >> 1);
            bool ok = m < M && blk < nb;
            const uint8_t *src = ok ? qs + ((size_t)m * nb + blk) * (TYPE == 0 ? 16 : 32) + (TYPE == 0 ? 0 : (ch & 1) * 16)
                                    : qs;
            mmq_cp_async16(st + r * MMQ_WROW + ((ch ^ (r & 7)) << 4), src, ok);
        }
        constexpr int XCH = KB * 2;  // 16-byte chunks of an activation row's tile
        uint32_t sx = st + T::W_BYTES;
        for (int c = tid; c < groups * 8 * XCH; c += MMQ_WARPS * 32) {
            int r = c / XCH, ch = c % XCH;
            int t = base + r;
            int k = kt * KB * 32 + ch * 16;
            bool ok = t < rows && k < K;
            const int8_t *src = ok ? xq + (size_t)t * K + k : xq;
            mmq_cp_async16(sx + r * T::XROW + ((ch ^ (r & 7)) << 4), src, ok);
        }
    };
    // Loads tile kt's scales into registers (global loads in flight while the previous tile is multiplied) ...
    unsigned short dwr[T::DW_LOADS];  // half bits
    float dxr[T::DX_LOADS];
    auto load_scales = [&](int kt) {
#pragma unroll
        for (int p = 0; p < T::DW_LOADS; p++) {
            int e = tid + p * MMQ_WARPS * 32, r = e / KB, b = e % KB;  // consecutive threads: a row's blocks
            int m = mbase + r, blk = kt * KB + b;
            dwr[p] = m < M && blk < nb ? reinterpret_cast<const unsigned short *>(d)[(size_t)m * nb + blk] : 0;
        }
#pragma unroll
        for (int p = 0; p < T::DX_LOADS; p++) {
            int e = tid + p * MMQ_WARPS * 32, r = e / KB, b = e % KB;
            int t = base + r, blk = kt * KB + b;
            dxr[p] = r < groups * 8 && t < rows && blk < nb ? xds[(size_t)t * nb + blk].x : 0.f;
        }
    };
    // ... and stores them into stage s.
    auto store_scales = [&](int s) {
        unsigned short *dw = reinterpret_cast<unsigned short *>(mmq_smem + s * T::STAGE + T::W_BYTES + T::X_BYTES);
        float *dx = reinterpret_cast<float *>(mmq_smem + s * T::STAGE + T::W_BYTES + T::X_BYTES + T::DW_BYTES);
#pragma unroll
        for (int p = 0; p < T::DW_LOADS; p++) {
            int e = tid + p * MMQ_WARPS * 32;
            dw[(e % KB) * T::DW_STRIDE + e / KB] = dwr[p];
        }
#pragma unroll
        for (int p = 0; p < T::DX_LOADS; p++) {
            int e = tid + p * MMQ_WARPS * 32;
            dx[(e % KB) * T::DX_STRIDE + e / KB] = dxr[p];
        }
    };

    float acc[MMQ_BN / 8][4];
#pragma unroll
    for (int j = 0; j < MMQ_BN / 8; j++) acc[j][0] = acc[j][1] = acc[j][2] = acc[j][3] = 0.f;

    // ldmatrix lane addresses (lane L supplies row L % 8 of matrix L / 8), relative to a stage. Every row a lane
    // supplies is = lane (mod 8), so its swizzle is lane & 7; the logical chunk is even + 0/1, i.e. even ^ 0/1.
    const int wr = warp * 16 + (lane & 7) + ((lane >> 3) & 1) * 8;  // weight row: matrices 0/2 rows 0-7, 1/3 8-15
    const uint32_t a_row = wr * MMQ_WROW;
    const int a_x = (lane >> 4) ^ (lane & 7);  // matrices 2, 3: chunk + 1 (Q4_0: the next block; Q8_0: bytes 16-31)
    const int xr = (lane & 7) + (lane >> 4) * 8;  // activation row: matrices 0/1 rows 0-7, 2/3 rows 8-15
    const uint32_t b_row = T::W_BYTES + xr * T::XROW;
    const int b_x = ((lane >> 3) & 1) ^ (lane & 7);  // matrices 1, 3: chunk + 1 (bytes 16-31 of the block)

    // Three stages: tile kt is multiplied while tiles kt + 1 and kt + 2 load (quants by cp.async, one commit group per
    // tile, empty past the split's end so that "all but the newest group landed" always means tile kt). Scales go
    // through registers, loaded an iteration before they are stored, so their latency too hides behind a tile's MMAs.
    // One barrier per tile: after it, tile kt (quants and scales) is visible to all, and every warp is done with tile
    // kt - 1, whose stage (kt + 2) % 3 then takes tile kt + 2.
    if (kt0 < kt1) {
        load_quants(kt0, 0);
        mmq_cp_async_commit();
        if (kt0 + 1 < kt1) load_quants(kt0 + 1, 1);
        mmq_cp_async_commit();
        load_scales(kt0);
        store_scales(0);
        if (kt0 + 1 < kt1) load_scales(kt0 + 1);
    }
    for (int kt = kt0, s = 0; kt < kt1; kt++, s = s == 2 ? 0 : s + 1) {
        mmq_cp_async_wait<1>();
        __syncthreads();
        const int s1 = s == 2 ? 0 : s + 1, s2 = s1 == 2 ? 0 : s1 + 1;
        if (kt + 1 < kt1) store_scales(s1);  // stage s1's scales were last read for tile kt - 2
        if (kt + 2 < kt1) {
            load_quants(kt + 2, s2);
            load_scales(kt + 2);
        }
        mmq_cp_async_commit();
        const uint32_t st = smem0 + s * T::STAGE;
        const unsigned short *dw = reinterpret_cast<const unsigned short *>(mmq_smem + s * T::STAGE + T::W_BYTES + T::X_BYTES);
        const float *dx = reinterpret_cast<const float *>(mmq_smem + s * T::STAGE + T::W_BYTES + T::X_BYTES + T::DW_BYTES);
        // A short last tile needs no guard: its blocks past K are zero quants (cp.async zero-fill) on both sides with
        // zero scales, so they add fma(0, 0, acc) = acc. Likewise the n-tiles of a padded group count (see ngroups).
        auto multiply = [&](auto ng) {
            constexpr int NG = decltype(ng)::value;
            uint32_t cur0 = 0, cur1 = 0, nxt0 = 0, nxt1 = 0;  // Q4_0: rows g, g + 8 of block b, and of block b + 1
            constexpr int UNROLL = NG == 8 ? 1 : KB;  // NG = 8 fully unrolled hoists all loads: past 128 registers
#pragma unroll UNROLL
            for (int b = 0; b < KB; b++) {
                uint32_t a0, a1, a2, a3;
                if (TYPE == 0) {
                    if ((b & 1) == 0) {
                        mmq_ldmatrix_x4(st + a_row + ((b ^ a_x) << 4), cur0, cur1, nxt0, nxt1);  // blocks b, b + 1
                    } else {
                        cur0 = nxt0;
                        cur1 = nxt1;
                    }
                    a0 = __vsub4(cur0 & 0x0F0F0F0Fu, 0x08080808u);
                    a2 = __vsub4((cur0 >> 4) & 0x0F0F0F0Fu, 0x08080808u);
                    a1 = __vsub4(cur1 & 0x0F0F0F0Fu, 0x08080808u);
                    a3 = __vsub4((cur1 >> 4) & 0x0F0F0F0Fu, 0x08080808u);
                } else {
                    mmq_ldmatrix_x4(st + a_row + (((2 * b) ^ a_x) << 4), a0, a1, a2, a3);
                }
                const float dw0 = __half2float(__ushort_as_half(dw[b * T::DW_STRIDE + warp * 16 + g]));
                const float dw1 = __half2float(__ushort_as_half(dw[b * T::DW_STRIDE + warp * 16 + g + 8]));
#pragma unroll
                for (int p = 0; p < (NG + 1) / 2; p++) {
                    uint32_t b00, b01, b10, b11;  // n-tile 2p: b00, b01; n-tile 2p + 1: b10, b11
                    mmq_ldmatrix_x4(st + b_row + p * 16 * T::XROW + (((2 * b) ^ b_x) << 4), b00, b01, b10, b11);
#pragma unroll
                    for (int h = 0; h < (NG < 2 ? NG : 2); h++) {
                        const int j = 2 * p + h;
                        int c0 = MMQ_MAGIC, c1 = MMQ_MAGIC, c2 = MMQ_MAGIC, c3 = MMQ_MAGIC;
                        mma_s8_16x8x32(c0, c1, c2, c3, a0, a1, a2, a3, h ? b10 : b00, h ? b11 : b01);
                        const float2 dxp = *reinterpret_cast<const float2 *>(dx + b * T::DX_STRIDE + j * 8 + 2 * i4);
                        acc[j][0] = mmq_fma(dw0, dxp.x, c0, acc[j][0]);
                        acc[j][1] = mmq_fma(dw0, dxp.y, c1, acc[j][1]);
                        acc[j][2] = mmq_fma(dw1, dxp.x, c2, acc[j][2]);
                        acc[j][3] = mmq_fma(dw1, dxp.y, c3, acc[j][3]);
                    }
                }
            }
        };
        switch (ngroups) {  // uniform: no branch inside the unrolled MMA loop
            case 1: multiply(MmqInt<1>{}); break;
            case 2: multiply(MmqInt<2>{}); break;
            case 4: multiply(MmqInt<4>{}); break;
            default: multiply(MmqInt<8>{}); break;
        }
    }
    mmq_cp_async_wait<0>();

    const int row0 = mbase + warp * 16 + g, row1 = row0 + 8;
#pragma unroll
    for (int j = 0; j < MMQ_BN / 8; j++) {
        if (j < groups) {
#pragma unroll
            for (int c = 0; c < 4; c++) {
                const int row = c < 2 ? row0 : row1, t = base + j * 8 + 2 * i4 + (c & 1);
                if (row < M && t < rows) {
                    if (splits == 1) {
                        size_t o = (size_t)t * M + row;
                        y[o] = add ? add[o] + acc[j][c] : acc[j][c];
                    } else {
                        ws[((size_t)split * rows + t) * M + row] = acc[j][c];
                    }
                }
            }
        }
    }
    if (splits > 1 && counters != nullptr) mmq_reduce_last(ws, counters, add, y, M, rows, splits, mbase, base);
}
// Grid (ceil(M / 128), ceil(rows / 64), splits), MMQ_WARPS * 32 threads, MmqTile<0>::SMEM dynamic shared bytes. With
// splits > 1: ws holds splits * rows * M floats, counters one zeroed word per block of the grid's x-y plane, or null:
// then only the partial sums are written, for gemv_rows_mmq_reduce (the same sums, in a second launch).
extern "C" __global__ void __launch_bounds__(MMQ_WARPS * 32, 2)
gemv_rows_mmq_q4_0(const uint8_t *__restrict__ qs, const __half *__restrict__ d, const int8_t *__restrict__ xq,
                   const float2 *__restrict__ xds, const float *add, float *y, float *ws, unsigned *counters, int M,
                   int K, int rows, int splits) {
    pdl_entry();
    gemv_rows_mmq_impl<0>(qs, d, xq, xds, add, y, ws, counters, M, K, rows, splits);
}

// Grid (ceil(M / 128), ceil(rows / 64), splits), MMQ_WARPS * 32 threads, MmqTile<1>::SMEM dynamic shared bytes; ws and
// counters as gemv_rows_mmq_q4_0.
extern "C" __global__ void __launch_bounds__(MMQ_WARPS * 32, 2)
gemv_rows_mmq_q8_0(const uint8_t *__restrict__ qs, const __half *__restrict__ d, const int8_t *__restrict__ xq,
                   const float2 *__restrict__ xds, const float *add, float *y, float *ws, unsigned *counters, int M,
                   int K, int rows, int splits) {
    pdl_entry();
    gemv_rows_mmq_impl<1>(qs, d, xq, xds, add, y, ws, counters, M, K, rows, splits);
}

// Grid (ceil(M / 256), rows), 256 threads: y[t][m] = (add[t][m] +) the splits' partial sums of gemv_rows_mmq_* launched
// with null counters, added in split order: bitwise the fused reduction's result. Kept to compare the two
// (-Daether.cuda.mmqReduce=kernel); the fused one saves a launch per split matrix.
extern "C" __global__ void __launch_bounds__(256)
gemv_rows_mmq_reduce(const float *__restrict__ ws, const float *add, float *y, int M, int rows, int splits) {
    pdl_entry();
    int m = blockIdx.x * 256 + threadIdx.x, t = blockIdx.y;
    if (m >= M) return;
    size_t o = (size_t)t * M + m;
    float s = ws[o];
    for (int p = 1; p < splits; p++) s += ws[((size_t)p * rows + t) * M + m];
    y[o] = add ? add[o] + s : s;
}
