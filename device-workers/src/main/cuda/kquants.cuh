// Q4_K and Q6_K on the GPU: repacking at upload, decode GEMV (int8 dp4a against the q8_1 activations of
// aether_kernels.cu) and embedding rows. Included at the end of aether_kernels.cu (one fatbin, one module); uses its
// helpers (ld_stream, warp_sum, gemv_finish, GEMV_PROLOGUE).
//
// Repacked layouts (aether.device.cuda.GpuMatrix allocates one buffer per matrix: `quants` is its start, `rest` the
// part after the quants). nb = K / 32 sub-blocks per row, nsb = K / 256 super-blocks per row; sub-block b of a row
// holds elements 32b..32b+31 in natural order, its 16 "lo" bytes as Q4_0 packs them (byte i: element i in the low
// nibble, element i + 16 in the high one), so the GEMV's inner loop is Q4_0's:
//   Q4_K: lo[M][nb][16] | scm[M][nb] (uchar2: 6-bit scale, 6-bit min of the sub-block) | dm[M][nsb] (half2: d, dmin)
//         x = (d*sc)*q - (dmin*m), q = 0..15                                      4.625 bits per weight (GGUF: 4.5)
//   Q6_K: lo[M][nb][16] (low 4 bits) | hi[M][nb] (uint2: the high 2 bits, see below) | sc[M][nb] (char2: the int8
//         scales of elements 0..15 and 16..31) | d[M][nsb] (half)
//         x = (d*sc)*(q - 32), q = 0..63                                          6.5625 bits per weight, as GGUF
//   hi of Q6_K: word 0 covers elements 0..15, word 1 elements 16..31; byte c of a word holds, in bits 2w..2w+1, the
//   high bits of element 4w + c (of its 16). So the dp4a word of elements 4w..4w+3 is
//   (lo_word_w & 0x0F0F0F0F) | (((hi >> 2w) & 0x03030303) << 4): four shifts and masks, no byte shuffles.
// The same numbers as the GGUF blocks: the scales are bytes copied, d*sc is formed in float as ggml does.

__device__ __forceinline__ int kq_scale_k4(const uint8_t *s, int j) {
    return j < 4 ? (s[j] & 63) : ((s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4));
}

__device__ __forceinline__ int kq_min_k4(const uint8_t *s, int j) {
    return j < 4 ? (s[j + 4] & 63) : ((s[j + 4] >> 4) | ((s[j] >> 6) << 4));
}

// One thread per 32-element sub-block (nsub = M * nb). raw: GGUF block_q4_K (d, dmin, scales[12], qs[128]).
extern "C" __global__ void repack_q4_k(const uint8_t *__restrict__ raw, uint8_t *__restrict__ lo,
                                       uchar2 *__restrict__ scm, __half2 *__restrict__ dm, long long nsub) {
    pdl_entry();
    long long gb = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (gb >= nsub) return;
    const uint8_t *blk = raw + (gb >> 3) * 144;
    int j = (int)(gb & 7);
    const uint8_t *q = blk + 16 + 32 * (j >> 1);  // 32 bytes shared by sub-blocks 2i (low nibbles), 2i+1 (high)
    int shift = (j & 1) * 4;
    uint8_t *dst = lo + gb * 16;
#pragma unroll
    for (int i = 0; i < 16; i++) {
        int a = (q[i] >> shift) & 15, b = (q[i + 16] >> shift) & 15;
        dst[i] = (uint8_t)(a | (b << 4));
    }
    scm[gb] = make_uchar2((unsigned char)kq_scale_k4(blk + 4, j), (unsigned char)kq_min_k4(blk + 4, j));
    if (j == 0) {
        dm[gb >> 3] = __halves2half2(__ushort_as_half((unsigned short)(blk[0] | (blk[1] << 8))),
                                     __ushort_as_half((unsigned short)(blk[2] | (blk[3] << 8))));
    }
}

// One thread per 32-element sub-block. raw: GGUF block_q6_K (ql[128], qh[64], scales[16], d).
extern "C" __global__ void repack_q6_k(const uint8_t *__restrict__ raw, uint8_t *__restrict__ lo,
                                       uint2 *__restrict__ hi, char2 *__restrict__ sc, __half *__restrict__ d,
                                       long long nsub) {
    pdl_entry();
    long long gb = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (gb >= nsub) return;
    const uint8_t *blk = raw + (gb >> 3) * 210;
    int j = (int)(gb & 7), n = j >> 2, quarter = j & 3;
    const uint8_t *ql = blk + 64 * n + ((quarter & 1) ? 32 : 0);
    const uint8_t *qh = blk + 128 + 32 * n;
    int lshift = (quarter >> 1) * 4, hshift = 2 * quarter;
    uint8_t q[32];
#pragma unroll
    for (int i = 0; i < 32; i++) q[i] = (uint8_t)(((ql[i] >> lshift) & 15) | (((qh[i] >> hshift) & 3) << 4));
    uint8_t *dst = lo + gb * 16;
#pragma unroll
    for (int i = 0; i < 16; i++) dst[i] = (uint8_t)((q[i] & 15) | ((q[i + 16] & 15) << 4));
    unsigned int h0 = 0, h1 = 0;
#pragma unroll
    for (int w = 0; w < 4; w++) {
#pragma unroll
        for (int c = 0; c < 4; c++) {
            h0 |= (unsigned int)(q[4 * w + c] >> 4) << (8 * c + 2 * w);
            h1 |= (unsigned int)(q[16 + 4 * w + c] >> 4) << (8 * c + 2 * w);
        }
    }
    hi[gb] = make_uint2(h0, h1);
    const int8_t *scales = reinterpret_cast<const int8_t *>(blk + 192);
    sc[gb] = make_char2(scales[2 * j], scales[2 * j + 1]);
    if (j == 0) d[gb >> 3] = __ushort_as_half((unsigned short)(blk[208] | (blk[209] << 8)));
}

// The 6-bit values of Q6_K as signed int8 (q - 32) for dp4a: word w of elements 0..15 (high = 0) or 16..31 (high = 1).
__device__ __forceinline__ int kq_q6_word(unsigned int lo_word, unsigned int hi_word, int w, int high) {
    unsigned int low4 = high ? (lo_word >> 4) & 0x0F0F0F0Fu : lo_word & 0x0F0F0F0Fu;
    unsigned int v = low4 | (((hi_word >> (2 * w)) & 0x03030303u) << 4);  // 0..63 per byte
    return (int)__vsub4(v, 0x20202020u);                                 // -32..31 per byte, no borrow across
}

// ---- decode GEMV: y[M] = W[M,K] . x[K] (+ add[M]), K a multiple of 256; launched like gemv_q4_0 -------------------
// (the dot products in gemv_acc_q4_k/q6_k, which the fused decode GEMVs of fused_decode.cuh share)

__device__ __forceinline__ float gemv_acc_q4_k(const uint8_t *__restrict__ qs, const uint8_t *__restrict__ rest,
                                               const int8_t *__restrict__ xq, const float2 *__restrict__ xds, int row,
                                               int M, int K, int first, int step) {
    float acc = 0.f;
    if (row < M) {
        int nb = K >> 5;
        const uint8_t *wq = qs + (size_t)row * nb * 16;
        const uchar2 *scm = reinterpret_cast<const uchar2 *>(rest) + (size_t)row * nb;
        const __half2 *dm = reinterpret_cast<const __half2 *>(rest + (size_t)M * nb * 2) + (size_t)row * (nb >> 3);
#pragma unroll 4
        for (int b = first; b < nb; b += step) {
            uint4 w = ld_stream(wq + (size_t)b * 16);
            uchar2 sm = scm[b];
            float2 dmf = __half22float2(dm[b >> 3]);
            const int4 *xp = reinterpret_cast<const int4 *>(xq + b * 32);
            int4 x0 = xp[0], x1 = xp[1];
            float2 ds = xds[b];
            int s = dot_q4_nibbles(w, x0, x1);
            // sum_j ((d*sc)*q_j - dmin*m) * dx*qx_j = (d*sc) * dx*sum(q*qx) - (dmin*m) * dx*sum(qx)
            acc += (dmf.x * (float)sm.x) * (ds.x * (float)s) - (dmf.y * (float)sm.y) * ds.y;
        }
    }
    return acc;
}

extern "C" __global__ void __launch_bounds__(GEMV_WARPS * 32)
gemv_q4_k(const uint8_t *__restrict__ qs, const uint8_t *__restrict__ rest, const int8_t *__restrict__ xq,
          const float2 *__restrict__ xds, const float *add, float *y, int M, int K, int split) {
    pdl_entry();
    GEMV_PROLOGUE
    acc = gemv_acc_q4_k(qs, rest, xq, xds, row, M, K, first, step);
    gemv_finish(acc, add, y, row, M, split);
}

__device__ __forceinline__ float gemv_acc_q6_k(const uint8_t *__restrict__ qs, const uint8_t *__restrict__ rest,
                                               const int8_t *__restrict__ xq, const float2 *__restrict__ xds, int row,
                                               int M, int K, int first, int step) {
    float acc = 0.f;
    if (row < M) {
        int nb = K >> 5;
        const uint8_t *wq = qs + (size_t)row * nb * 16;
        const uint2 *hi = reinterpret_cast<const uint2 *>(rest) + (size_t)row * nb;
        const char2 *sc = reinterpret_cast<const char2 *>(rest + (size_t)M * nb * 8) + (size_t)row * nb;
        const __half *dd = reinterpret_cast<const __half *>(rest + (size_t)M * nb * 10) + (size_t)row * (nb >> 3);
#pragma unroll 4
        for (int b = first; b < nb; b += step) {
            uint4 w = ld_stream(wq + (size_t)b * 16);
            uint2 h = hi[b];
            char2 s2 = sc[b];
            float d = __half2float(dd[b >> 3]);
            const int4 *xp = reinterpret_cast<const int4 *>(xq + b * 32);
            int4 x0 = xp[0], x1 = xp[1];
            int s0 = 0, s1 = 0;
            s0 = __dp4a(kq_q6_word(w.x, h.x, 0, 0), x0.x, s0);
            s0 = __dp4a(kq_q6_word(w.y, h.x, 1, 0), x0.y, s0);
            s0 = __dp4a(kq_q6_word(w.z, h.x, 2, 0), x0.z, s0);
            s0 = __dp4a(kq_q6_word(w.w, h.x, 3, 0), x0.w, s0);
            s1 = __dp4a(kq_q6_word(w.x, h.y, 0, 1), x1.x, s1);
            s1 = __dp4a(kq_q6_word(w.y, h.y, 1, 1), x1.y, s1);
            s1 = __dp4a(kq_q6_word(w.z, h.y, 2, 1), x1.z, s1);
            s1 = __dp4a(kq_q6_word(w.w, h.y, 3, 1), x1.w, s1);
            // two int8 scales per 32 elements: the integer sum stays exact (|sc * s| < 2^21)
            acc += d * xds[b].x * (float)(s2.x * s0 + s2.y * s1);
        }
    }
    return acc;
}

extern "C" __global__ void __launch_bounds__(GEMV_WARPS * 32)
gemv_q6_k(const uint8_t *__restrict__ qs, const uint8_t *__restrict__ rest, const int8_t *__restrict__ xq,
          const float2 *__restrict__ xds, const float *add, float *y, int M, int K, int split) {
    pdl_entry();
    GEMV_PROLOGUE
    acc = gemv_acc_q6_k(qs, rest, xq, xds, row, M, K, first, step);
    gemv_finish(acc, add, y, row, M, split);
}

// ---- embedding rows (as get_row_q4_0): row tokens[blockIdx.y] of the table, dequantized like ggml ---------------------

extern "C" __global__ void get_row_q4_k(const uint8_t *__restrict__ qs, const uint8_t *__restrict__ rest, int rows,
                                        const int *__restrict__ tokens, float *__restrict__ out, int K) {
    pdl_entry();
    int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= K) return;
    size_t nb = K >> 5, b = (size_t)tokens[blockIdx.y] * nb + (j >> 5);
    int i = j & 31;
    uint8_t byte = qs[b * 16 + (i & 15)];
    int v = i < 16 ? (byte & 15) : (byte >> 4);
    uchar2 sm = reinterpret_cast<const uchar2 *>(rest)[b];
    float2 dmf = __half22float2(reinterpret_cast<const __half2 *>(rest + (size_t)rows * nb * 2)[b >> 3]);
    // ggml: y = d1 * q - m1 with d1 = d * sc, m1 = dmin * m, each rounded (no fused multiply-add)
    out[(size_t)blockIdx.y * K + j] = __fsub_rn(__fmul_rn(__fmul_rn(dmf.x, (float)sm.x), (float)v),
                                                __fmul_rn(dmf.y, (float)sm.y));
}

extern "C" __global__ void get_row_q6_k(const uint8_t *__restrict__ qs, const uint8_t *__restrict__ rest, int rows,
                                        const int *__restrict__ tokens, float *__restrict__ out, int K) {
    pdl_entry();
    int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= K) return;
    size_t nb = K >> 5, b = (size_t)tokens[blockIdx.y] * nb + (j >> 5);
    int i = j & 31, c = i & 15, high = i >> 4;
    uint8_t byte = qs[b * 16 + c];
    int low4 = high ? (byte >> 4) : (byte & 15);
    uint2 h = reinterpret_cast<const uint2 *>(rest)[b];
    unsigned int hw = high ? h.y : h.x;
    int w = c >> 2;
    int q = low4 | (((hw >> (8 * (c & 3) + 2 * w)) & 3) << 4);
    char2 s2 = reinterpret_cast<const char2 *>(rest + (size_t)rows * nb * 8)[b];
    float d = __half2float(reinterpret_cast<const __half *>(rest + (size_t)rows * nb * 10)[b >> 3]);
    out[(size_t)blockIdx.y * K + j] = __fmul_rn(__fmul_rn(d, (float)(high ? s2.y : s2.x)), (float)(q - 32));
}
