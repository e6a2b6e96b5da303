// Batched decode: one pass for many sequences, each row one token of one sequence at its own position (a step's
// decode tokens, and the tokens of prompt chunks that join them). Included at the end of aether_kernels.cu (uses its
// helpers); launched by aether.device.cuda.CudaRowKernels.
//
// A "row" r is one sequence's next token: its token id, its position and its KV slot come from three int arrays
// (ids[r], pos[r], slot[r]; the host writes them before each step, so a captured graph stays valid). Activations are
// [r][width] as for a prompt chunk, so the element-wise kernels of aether_kernels.cu (rmsnorm_quant, swiglu_quant,
// get_row_*, attn_combine) already serve rows through their grid's y/z; what differs from a chunk is that every row
// has its own position and slot, which the kernels below read per row:
//   * gemv_rows_mmq_q4_0/q8_0 (mmq_rows.cuh, the default for those types): an MMQ-style int8 tensor-core GEMM, tiles
//     of 128 weight rows x 64 rows staged in shared memory.
//   * gemv_rows_mma_q4_0/q8_0 (below; -Daether.cuda.rowsKernel=mma): int8 tensor cores, 16 weight rows a block, each
//     weight block read once for up to 64 rows.
//   * gemv_rows_*: the chunk GEMV (gemv_batch_impl: each weight block read once and multiplied with BATCH tokens'
//     activations) over R rows in groups of BATCH, the group in blockIdx.y (F16, BF16, and Q4_0/Q8_0 with
//     -Daether.cuda.rowsKernel=dp4a). Blocks are issued x-fastest, so the groups of one row block run some time apart:
//     a weight matrix that fits in L2 is read from HBM about once per step, the rest up to R / BATCH times.
//   * rope_kv_rows: RoPE at pos[r], K and V stored at pos[r] of slot[r].
//   * attn_split_rows: row r's query heads over positions [0, pos[r]] of slot[r] (its own key was stored by
//     rope_kv_rows before), split over the cache length as attn_split; attn_combine merges the splits.

#include "arrive_last.cuh"

template <int TYPE>
__device__ __forceinline__ void gemv_rows_impl(const uint8_t *__restrict__ qs, const __half *__restrict__ d,
                                               const int8_t *xq, const float2 *xds, const float *x, const float *add,
                                               float *y, int M, int K, int rows) {
    size_t first = (size_t)blockIdx.y * BATCH;
    int ntok = min(BATCH, rows - (int)first);
    if (GB_FLOAT(TYPE)) {
        x += first * K;
    } else {
        xq += first * K;
        xds += first * (K >> 5);
    }
    if (add) add += first * M;
    y += first * M;
    gemv_batch_impl<TYPE>(qs, d, xq, xds, x, add, y, M, K, ntok);
}

extern "C" __global__ void __launch_bounds__(GEMV_BATCH_WARPS * 32)
gemv_rows_q4_0(const uint8_t *__restrict__ qs, const __half *__restrict__ d, const int8_t *__restrict__ xq,
               const float2 *__restrict__ xds, const float *add, float *y, int M, int K, int rows) {
    pdl_entry();
    gemv_rows_impl<GB_Q4_0>(qs, d, xq, xds, nullptr, add, y, M, K, rows);
}

extern "C" __global__ void __launch_bounds__(GEMV_BATCH_WARPS * 32)
gemv_rows_q8_0(const uint8_t *__restrict__ qs, const __half *__restrict__ d, const int8_t *__restrict__ xq,
               const float2 *__restrict__ xds, const float *add, float *y, int M, int K, int rows) {
    pdl_entry();
    gemv_rows_impl<GB_Q8_0>(qs, d, xq, xds, nullptr, add, y, M, K, rows);
}

extern "C" __global__ void __launch_bounds__(GEMV_BATCH_WARPS * 32)
gemv_rows_f16(const uint16_t *__restrict__ w, const float *__restrict__ x, const float *add, float *y, int M, int K,
              int rows) {
    pdl_entry();
    gemv_rows_impl<GB_F16>(reinterpret_cast<const uint8_t *>(w), nullptr, nullptr, nullptr, x, add, y, M, K, rows);
}

extern "C" __global__ void __launch_bounds__(GEMV_BATCH_WARPS * 32)
gemv_rows_bf16(const uint16_t *__restrict__ w, const float *__restrict__ x, const float *add, float *y, int M, int K,
               int rows) {
    pdl_entry();
    gemv_rows_impl<GB_BF16>(reinterpret_cast<const uint8_t *>(w), nullptr, nullptr, nullptr, x, add, y, M, K, rows);
}

// Grid (H + 2 * Hkv, rows), D threads: as rope_kv for row blockIdx.y at position pos[row] of slot[row].
extern "C" __global__ void rope_kv_rows(float *qkv, __half *__restrict__ kcache, __half *__restrict__ vcache,
                                        const int *__restrict__ pos_of, const int *__restrict__ slot_of,
                                        const float *__restrict__ ff, int H, int Hkv, int D, int nrot, int ctx,
                                        float freq_base, float freq_scale, int neox) {
    pdl_entry();
    int head = blockIdx.x, j = threadIdx.x, r = blockIdx.y;
    int pos = pos_of[r], slot = slot_of[r];
    qkv += (size_t)r * (H + 2 * Hkv) * D;
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
    if (rotate && j < nrot) {
        int pair, partner;
        bool lower;
        if (neox) {
            int half = nrot >> 1;
            lower = j < half;
            pair = lower ? j : j - half;
            partner = lower ? j + half : j - half;
        } else {
            lower = (j & 1) == 0;
            pair = j >> 1;
            partner = lower ? j + 1 : j - 1;
        }
        float xp = src[partner];
        // the same arithmetic as rope_kv, so a row's numbers equal the single-sequence path's
        float theta_scale = powf(freq_base, -2.0f / nrot);
        float theta = (float)pos * powf(theta_scale, (float)pair);
        if (ff) theta /= ff[pair];
        theta *= freq_scale;
        float c = cosf(theta), s = sinf(theta);
        out = lower ? xj * c - xp * s : xp * s + xj * c;
    }
    __syncthreads();  // q is rotated in place: every thread has read its partner before anyone writes
    if (dst) {
        dst[j] = __float2half(out);
    } else {
        src[j] = out;
    }
}

// Grid (H, nsplit, rows), ATTN_THREADS threads, dynamic shared memory (D + chunkMax) floats as attn_split: row r's
// query heads (at q + r * qstride) over positions [0, pos[r]] of slot[r]; partial results at [(r * H + h) * nsplit + s]
// for attn_combine (grid (H, 1, rows)).
extern "C" __global__ void __launch_bounds__(ATTN_THREADS)
attn_split_rows(const float *__restrict__ q, const __half *__restrict__ kcache, const __half *__restrict__ vcache,
                const int *__restrict__ pos_of, const int *__restrict__ slot_of, float *__restrict__ part_o,
                float2 *__restrict__ part_ml, int H, int Hkv, int D, int ctx, float scale, int qstride) {
    pdl_entry();
    extern __shared__ float smem[];
    float *qsh = smem;
    float *sc = smem + D;
    int h = blockIdx.x, s = blockIdx.y, nsplit = gridDim.y, r = blockIdx.z;
    int len = pos_of[r] + 1, slot = slot_of[r];
    q += (size_t)r * qstride;
    size_t part = ((size_t)r * H + h) * nsplit + s;
    int chunk = (len + nsplit - 1) / nsplit;
    int start = s * chunk, end = min(len, start + chunk);
    int g = h / (H / Hkv);
    const __half *kb = kcache + ((size_t)slot * Hkv + g) * ctx * D;
    const __half *vb = vcache + ((size_t)slot * Hkv + g) * ctx * D;
    for (int i = threadIdx.x; i < D; i += blockDim.x) qsh[i] = q[h * D + i] * scale;
    __syncthreads();
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
    for (int p = start + warp; p < end; p += nwarps) {
        const __half2 *kr = reinterpret_cast<const __half2 *>(kb + (size_t)p * D);
        float acc = 0.f;
        for (int i = lane; i < (D >> 1); i += WARP) {
            float2 k2 = __half22float2(kr[i]);
            acc += qsh[2 * i] * k2.x + qsh[2 * i + 1] * k2.y;
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

// Grid (Hkv, nsplit, rows), ATTN_THREADS threads, dynamic shared memory G * (D + ceil(ctx / nsplit)) floats with
// G = H / Hkv <= ATTN_GROUP_MAX: attn_split_rows for all G query heads that share KV head blockIdx.x at once, so every
// K and V row of the chunk is read once for the group instead of once per query head (Llama 8B: 4x less cache
// traffic; with 64 rows of a few hundred positions the KV cache of a layer does not fit L2, so that is HBM traffic).
// Partial results at the places attn_split_rows writes ([(r * H + h) * nsplit + s], for attn_combine). Each (row,
// head) is summed in an order fixed by its own length and nsplit (a function of ctx only): independent of the rows.
#define ATTN_GROUP_MAX 8

__device__ __forceinline__ void attn_split_rows_gqa_body(const float *__restrict__ q,
                                                         const __half *__restrict__ kcache,
                                                         const __half *__restrict__ vcache,
                                                         const int *__restrict__ pos_of,
                                                         const int *__restrict__ slot_of, float *__restrict__ part_o,
                                                         float2 *__restrict__ part_ml, int H, int Hkv, int D, int ctx,
                                                         float scale, int qstride) {
    extern __shared__ float smem[];
    int G = H / Hkv;
    int kv = blockIdx.x, s = blockIdx.y, nsplit = gridDim.y, r = blockIdx.z;
    int len = pos_of[r] + 1, slot = slot_of[r];
    int chunk = (len + nsplit - 1) / nsplit;
    int start = s * chunk, end = min(len, start + chunk), n = max(0, end - start);
    int cmax = (ctx + nsplit - 1) / nsplit;  // stride of a head's scores in shared memory
    float *qsh = smem;                       // [G][D], scaled
    float *sc = smem + G * D;                // [G][cmax]
    q += (size_t)r * qstride + (size_t)kv * G * D;
    for (int i = threadIdx.x; i < G * D; i += blockDim.x) qsh[i] = q[i] * scale;
    __syncthreads();
    const __half *kb = kcache + ((size_t)slot * Hkv + kv) * ctx * D;
    const __half *vb = vcache + ((size_t)slot * Hkv + kv) * ctx * D;
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
    // scores: a warp per position, its K row loaded once for the G heads
    for (int p = start + warp; p < end; p += nwarps) {
        const __half2 *kr = reinterpret_cast<const __half2 *>(kb + (size_t)p * D);
        float acc[ATTN_GROUP_MAX];
#pragma unroll
        for (int j = 0; j < ATTN_GROUP_MAX; j++) acc[j] = 0.f;
        for (int i = lane; i < (D >> 1); i += WARP) {
            float2 k2 = __half22float2(kr[i]);
#pragma unroll
            for (int j = 0; j < ATTN_GROUP_MAX; j++) {
                if (j < G) acc[j] += qsh[j * D + 2 * i] * k2.x + qsh[j * D + 2 * i + 1] * k2.y;
            }
        }
#pragma unroll
        for (int j = 0; j < ATTN_GROUP_MAX; j++) {
            if (j < G) {
                float a = warp_sum(acc[j]);
                if (lane == 0) sc[j * cmax + p - start] = a;
            }
        }
    }
    __syncthreads();
    // softmax of each head's chunk: a warp per head
    for (int j = warp; j < G; j += nwarps) {
        float *sj = sc + j * cmax;
        float m = -INFINITY;
        for (int p = lane; p < n; p += WARP) m = fmaxf(m, sj[p]);
        m = warp_max(m);
        float l = 0.f;
        for (int p = lane; p < n; p += WARP) {
            float e = expf(sj[p] - m);
            sj[p] = e;
            l += e;
        }
        l = warp_sum(l);
        if (lane == 0) part_ml[((size_t)r * H + kv * G + j) * nsplit + s] = make_float2(m, l);
    }
    __syncthreads();
    // weighted V: a thread per column, its V element loaded once for the G heads
    for (int i = threadIdx.x; i < D; i += blockDim.x) {
        float acc[ATTN_GROUP_MAX];
#pragma unroll
        for (int j = 0; j < ATTN_GROUP_MAX; j++) acc[j] = 0.f;
#pragma unroll 4
        for (int p = 0; p < n; p++) {
            float v = __half2float(vb[(size_t)(start + p) * D + i]);
#pragma unroll
            for (int j = 0; j < ATTN_GROUP_MAX; j++) {
                if (j < G) acc[j] += sc[j * cmax + p] * v;
            }
        }
#pragma unroll
        for (int j = 0; j < ATTN_GROUP_MAX; j++) {
            if (j < G) part_o[(((size_t)r * H + kv * G + j) * nsplit + s) * D + i] = acc[j];
        }
    }
}

extern "C" __global__ void __launch_bounds__(ATTN_THREADS)
attn_split_rows_gqa(const float *__restrict__ q, const __half *__restrict__ kcache, const __half *__restrict__ vcache,
                    const int *__restrict__ pos_of, const int *__restrict__ slot_of, float *__restrict__ part_o,
                    float2 *__restrict__ part_ml, int H, int Hkv, int D, int ctx, float scale, int qstride) {
    pdl_entry();
    attn_split_rows_gqa_body(q, kcache, vcache, pos_of, slot_of, part_o, part_ml, H, Hkv, D, ctx, scale, qstride);
}

// attn_split_rows_gqa and attn_combine in one launch: after its split, a block counts itself in on
// counters[r * Hkv + kv]; the last of the nsplit blocks of (row, KV head) merges the splits of the group's G query
// heads (in split order, as attn_combine: the same bits) into out and outQ, and resets the counter for the next launch
// or graph replay.
extern "C" __global__ void __launch_bounds__(ATTN_THREADS)
attn_split_rows_gqa_fused(const float *__restrict__ q, const __half *__restrict__ kcache,
                          const __half *__restrict__ vcache, const int *__restrict__ pos_of,
                          const int *__restrict__ slot_of, float *__restrict__ part_o, float2 *__restrict__ part_ml,
                          int H, int Hkv, int D, int ctx, float scale, int qstride, int *__restrict__ counters,
                          float *__restrict__ out, int8_t *__restrict__ xq, float2 *__restrict__ xds) {
    pdl_entry();
    attn_split_rows_gqa_body(q, kcache, vcache, pos_of, slot_of, part_o, part_ml, H, Hkv, D, ctx, scale, qstride);
    int kv = blockIdx.x, nsplit = gridDim.y, G = H / Hkv;
    size_t r = blockIdx.z;
    // this block's partial results are visible device-wide before it counts itself in; the last one resets the counter
    if (!arrive_last(reinterpret_cast<unsigned *>(counters + r * Hkv + kv), (unsigned)nsplit)) return;
    for (int j = 0; j < G; j++) {
        for (int i0 = 0; i0 < D; i0 += blockDim.x) {
            int i = i0 + threadIdx.x;
            if (i < D) attn_combine_column<true>(part_o, part_ml, out, xq, xds, D, nsplit, kv * G + j, H, r, i);
        }
    }
}

// ---- row GEMV on int8 tensor cores (Q4_0, Q8_0) -------------------------------------------------------------------
// Y[t][M] = W[M,K] . X[t][K] (+ add[t][M]) for t < rows, with mma.m16n8k32 (s8 x s8 -> s32): one MMA multiplies a
// weight block (32 k) of 16 rows with the same block of 8 rows' quantized activations, so the block's integer dot
// products cost one instruction instead of 128 dp4a, and each weight block loaded serves up to MMA_GROUPS * 8 rows.
// Block (x, y): weight rows [16x, 16x + 16), activation rows [64y, 64y + 64); its MMA_WARPS warps take every
// MMA_WARPS-th weight block of K (split-K inside the block) and their partial sums are added in warp order through
// shared memory, so every output is summed in one fixed order: a row's result does not depend on the others.
// Q4_0 nibbles become q - 8 (signed, -8..7) before the MMA: sum((q - 8) * qx) exactly, times d_w * d_x per block, which
// is W . dequant(quant(x)) as gemv_q4_0 computes it (up to float rounding order).
// Fragments (PTX ISA, m16n8k32 .s8; lane = 4 * g + i): A regs {row g k 4i.., row g+8 k 4i.., row g k 16+4i..,
// row g+8 k 16+4i..}; B regs {k 4i.., k 16+4i..} of column (activation row) g; C {(g, 2i), (g, 2i+1), (g+8, 2i),
// (g+8, 2i+1)}. The split layout keeps a Q4_0 block's 16 bytes as element j (low nibble) and j + 16 (high nibble)
// of byte j, so one 32-bit load gives a thread both of a row's A registers.

#define MMA_WARPS 8
#define MMA_GROUPS 8

__device__ __forceinline__ void mma_s8_16x8x32(int &c0, int &c1, int &c2, int &c3, uint32_t a0, uint32_t a1,
                                               uint32_t a2, uint32_t a3, uint32_t b0, uint32_t b1) {
    asm volatile("mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%0,%1,%2,%3};"
                 : "+r"(c0), "+r"(c1), "+r"(c2), "+r"(c3)
                 : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

template <int TYPE>  // 0 = Q4_0, 1 = Q8_0 (split layout)
__device__ __forceinline__ void gemv_rows_mma_impl(const uint8_t *__restrict__ qs, const __half *__restrict__ d,
                                                   const int8_t *__restrict__ xq, const float2 *__restrict__ xds,
                                                   const float *add, float *y, int M, int K, int rows) {
    __shared__ float red[MMA_WARPS][MMA_GROUPS][4][WARP];
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, i4 = lane & 3;
    int nb = K >> 5;
    int row0 = blockIdx.x * 16 + g, row1 = row0 + 8;
    size_t w0 = (size_t)min(row0, M - 1) * nb, w1 = (size_t)min(row1, M - 1) * nb;  // rows past M: valid reads
    int base = blockIdx.y * (MMA_GROUPS * 8);
    int groups = (min(MMA_GROUPS * 8, rows - base) + 7) >> 3;  // the same in every thread
    float acc[MMA_GROUPS][4];
#pragma unroll
    for (int j = 0; j < MMA_GROUPS; j++) acc[j][0] = acc[j][1] = acc[j][2] = acc[j][3] = 0.f;
#pragma unroll 2
    for (int b = warp; b < nb; b += MMA_WARPS) {
        uint32_t a0, a1, a2, a3;
        if (TYPE == 0) {
            uint32_t q0 = *reinterpret_cast<const uint32_t *>(qs + (w0 + b) * 16 + i4 * 4);
            uint32_t q1 = *reinterpret_cast<const uint32_t *>(qs + (w1 + b) * 16 + i4 * 4);
            a0 = __vsub4(q0 & 0x0F0F0F0Fu, 0x08080808u);
            a2 = __vsub4((q0 >> 4) & 0x0F0F0F0Fu, 0x08080808u);
            a1 = __vsub4(q1 & 0x0F0F0F0Fu, 0x08080808u);
            a3 = __vsub4((q1 >> 4) & 0x0F0F0F0Fu, 0x08080808u);
        } else {
            const uint8_t *p0 = qs + (w0 + b) * 32 + i4 * 4, *p1 = qs + (w1 + b) * 32 + i4 * 4;
            a0 = *reinterpret_cast<const uint32_t *>(p0);
            a2 = *reinterpret_cast<const uint32_t *>(p0 + 16);
            a1 = *reinterpret_cast<const uint32_t *>(p1);
            a3 = *reinterpret_cast<const uint32_t *>(p1 + 16);
        }
        float dw0 = __half2float(d[w0 + b]), dw1 = __half2float(d[w1 + b]);
#pragma unroll
        for (int j = 0; j < MMA_GROUPS; j++) {
            if (j < groups) {
                int tb = min(base + j * 8 + g, rows - 1);  // this thread's B column; rows past the end: valid reads
                const int8_t *xp = xq + (size_t)tb * K + b * 32 + i4 * 4;
                uint32_t b0 = *reinterpret_cast<const uint32_t *>(xp);
                uint32_t b1 = *reinterpret_cast<const uint32_t *>(xp + 16);
                int c0 = 0, c1 = 0, c2 = 0, c3 = 0;
                mma_s8_16x8x32(c0, c1, c2, c3, a0, a1, a2, a3, b0, b1);
                int t0 = min(base + j * 8 + 2 * i4, rows - 1), t1 = min(base + j * 8 + 2 * i4 + 1, rows - 1);
                float dx0 = xds[(size_t)t0 * nb + b].x, dx1 = xds[(size_t)t1 * nb + b].x;
                acc[j][0] += dw0 * dx0 * (float)c0;
                acc[j][1] += dw0 * dx1 * (float)c1;
                acc[j][2] += dw1 * dx0 * (float)c2;
                acc[j][3] += dw1 * dx1 * (float)c3;
            }
        }
    }
#pragma unroll
    for (int j = 0; j < MMA_GROUPS; j++) {
#pragma unroll
        for (int c = 0; c < 4; c++) red[warp][j][c][lane] = acc[j][c];
    }
    __syncthreads();
    int j = warp;  // MMA_WARPS == MMA_GROUPS: warp j writes group j
    if (j >= groups) return;
#pragma unroll
    for (int c = 0; c < 4; c++) {
        float s = 0.f;
#pragma unroll
        for (int w = 0; w < MMA_WARPS; w++) s += red[w][j][c][lane];
        int row = c < 2 ? row0 : row1, t = base + j * 8 + 2 * i4 + (c & 1);
        if (row < M && t < rows) {
            size_t o = (size_t)t * M + row;
            y[o] = add ? add[o] + s : s;
        }
    }
}

#if MMA_WARPS != MMA_GROUPS
#error "gemv_rows_mma_impl's write-out has warp j write group j"
#endif

extern "C" __global__ void __launch_bounds__(MMA_WARPS * 32)
gemv_rows_mma_q4_0(const uint8_t *__restrict__ qs, const __half *__restrict__ d, const int8_t *__restrict__ xq,
                   const float2 *__restrict__ xds, const float *add, float *y, int M, int K, int rows) {
    pdl_entry();
    gemv_rows_mma_impl<0>(qs, d, xq, xds, add, y, M, K, rows);
}

extern "C" __global__ void __launch_bounds__(MMA_WARPS * 32)
gemv_rows_mma_q8_0(const uint8_t *__restrict__ qs, const __half *__restrict__ d, const int8_t *__restrict__ xq,
                   const float2 *__restrict__ xds, const float *add, float *y, int M, int K, int rows) {
    pdl_entry();
    gemv_rows_mma_impl<1>(qs, d, xq, xds, add, y, M, K, rows);
}

// the MMQ row GEMM (uses mma_s8_16x8x32 above)
#include "mmq_rows.cuh"
