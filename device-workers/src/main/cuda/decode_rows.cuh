// Batched decode: one step for many sequences, each bringing one new token (included at the end of
// aether_kernels.cu; uses its helpers). Launched by aether.device.cuda.CudaRowKernels.
//
// A "row" r is one sequence's next token: its token id, its position and its KV slot come from three int arrays
// (ids[r], pos[r], slot[r]; the host writes them before each step, so a captured graph stays valid). Activations are
// [r][width] as for a prompt chunk, so the element-wise kernels of aether_kernels.cu (rmsnorm_quant, swiglu_quant,
// get_row_*, attn_combine) already serve rows through their grid's y/z; what differs from a chunk is that every row
// has its own position and slot, which the kernels below read per row:
//   * gemv_rows_*: the chunk GEMV (gemv_batch_impl: each weight block read once and multiplied with BATCH tokens'
//     activations) over R rows in groups of BATCH, the group in blockIdx.y. Blocks are issued x-fastest, so the
//     groups of one row block run some time apart: a weight matrix that fits in L2 (on an H100: everything but the
//     8B FFN up/gate and the output head) is read from HBM about once per step, the rest up to R / BATCH times.
//   * rope_kv_rows: RoPE at pos[r], K and V stored at pos[r] of slot[r].
//   * attn_split_rows: row r's query heads over positions [0, pos[r]] of slot[r] (its own key was stored by
//     rope_kv_rows before), split over the cache length as attn_split; attn_combine merges the splits.

template <int TYPE>
__device__ __forceinline__ void gemv_rows_impl(const uint8_t *__restrict__ qs, const __half *__restrict__ d,
                                               const int8_t *xq, const float2 *xds, const float *x, const float *add,
                                               float *y, int M, int K, int rows) {
    size_t first = (size_t)blockIdx.y * BATCH;
    int ntok = min(BATCH, rows - (int)first);
    if (TYPE == 2) {
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
    gemv_rows_impl<0>(qs, d, xq, xds, nullptr, add, y, M, K, rows);
}

extern "C" __global__ void __launch_bounds__(GEMV_BATCH_WARPS * 32)
gemv_rows_q8_0(const uint8_t *__restrict__ qs, const __half *__restrict__ d, const int8_t *__restrict__ xq,
               const float2 *__restrict__ xds, const float *add, float *y, int M, int K, int rows) {
    gemv_rows_impl<1>(qs, d, xq, xds, nullptr, add, y, M, K, rows);
}

extern "C" __global__ void __launch_bounds__(GEMV_BATCH_WARPS * 32)
gemv_rows_f16(const __half *__restrict__ w, const float *__restrict__ x, const float *add, float *y, int M, int K,
              int rows) {
    gemv_rows_impl<2>(reinterpret_cast<const uint8_t *>(w), nullptr, nullptr, nullptr, x, add, y, M, K, rows);
}

// Grid (H + 2 * Hkv, rows), D threads: as rope_kv for row blockIdx.y at position pos[row] of slot[row].
extern "C" __global__ void rope_kv_rows(float *qkv, __half *__restrict__ kcache, __half *__restrict__ vcache,
                                        const int *__restrict__ pos_of, const int *__restrict__ slot_of,
                                        const float *__restrict__ ff, int H, int Hkv, int D, int nrot, int ctx,
                                        float freq_base, float freq_scale, int neox) {
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
