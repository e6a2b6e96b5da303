// Kernels of the scheduler's segments on the GPU (aether.device.cuda.SegmentLowering lowers a segment's OpGraph into
// launches of these; CudaDevice.submit enqueues them on the device's stream). All values are f32, row-major and
// contiguous. Self-contained (own helpers, seg_ prefix): build-fatbin.sh compiles every .cu of this folder as one
// translation unit, so nothing here may clash with aether_kernels.cu.
//
// Shapes travel in a small int array `meta` in device memory (one upload per segment): for a broadcast or strided read
// of rank r it holds the output's r dimensions followed by each operand's r element strides (0 where broadcast).
// Sizes are long long so that a tensor may exceed 2^31 elements; per-dimension sizes and strides are int.

#include <cuda_fp16.h>
#include "pdl.cuh"
#include <stdint.h>
#include <math.h>

#define SEG_MAX_RANK 8
#define SEG_BLOCK 256

__device__ __forceinline__ float seg_warp_sum(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ float seg_warp_max(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// Block-wide sum / max for blockDim.x a multiple of 32 (at most 1024); every thread gets the result.
__device__ float seg_block_sum(float v) {
    __shared__ float part[32];
    __shared__ float total;
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    v = seg_warp_sum(v);
    if (lane == 0) part[warp] = v;
    __syncthreads();
    if (warp == 0) {
        float s = lane < warps ? part[lane] : 0.f;
        s = seg_warp_sum(s);
        if (lane == 0) total = s;
    }
    __syncthreads();
    float r = total;
    __syncthreads();   // part/total are reused by the caller's next reduction
    return r;
}

__device__ float seg_block_max(float v) {
    __shared__ float part[32];
    __shared__ float total;
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    v = seg_warp_max(v);
    if (lane == 0) part[warp] = v;
    __syncthreads();
    if (warp == 0) {
        float s = lane < warps ? part[lane] : -INFINITY;
        s = seg_warp_max(s);
        if (lane == 0) total = s;
    }
    __syncthreads();
    float r = total;
    __syncthreads();
    return r;
}

// ---- elementwise ----------------------------------------------------------------------------------------------------

// Function codes: 0..14 are Op.UnaryFn's ordinals (NEG ABS EXP LOG SQRT RSQRT TANH SIGMOID RELU GELU SILU SIGN STEP
// GELU_DERIV SILU_DERIV); then POW by a constant (p0), CLAMP to [p0, p1], SCALE by p0, COPY.
#define SEG_U_POWC 15
#define SEG_U_CLAMP 16
#define SEG_U_SCALE 17
#define SEG_U_COPY 18

__device__ __forceinline__ float seg_sigmoid(float x) {
    return x >= 0.f ? 1.f / (1.f + expf(-x)) : expf(x) / (1.f + expf(x));
}

__device__ __forceinline__ float seg_unary_fn(int fn, float x, float p0, float p1) {
    const float k = 0.7978845608028654f;   // sqrt(2/pi)
    const float a = 0.044715f;
    switch (fn) {
        case 0: return -x;
        case 1: return fabsf(x);
        case 2: return expf(x);
        case 3: return logf(x);
        case 4: return sqrtf(x);
        case 5: return 1.f / sqrtf(x);
        case 6: return tanhf(x);
        case 7: return seg_sigmoid(x);
        case 8: return x > 0.f ? x : 0.f;
        case 9: return 0.5f * x * (1.f + tanhf(k * x * (1.f + a * x * x)));
        case 10: return x * seg_sigmoid(x);
        case 11: return x > 0.f ? 1.f : (x < 0.f ? -1.f : x);   // signum keeps 0, -0 and NaN
        case 12: return x > 0.f ? 1.f : 0.f;
        case 13: {
            float t = tanhf(k * x * (1.f + a * x * x));
            return 0.5f * (1.f + t) + 0.5f * x * (1.f - t * t) * k * (1.f + 3.f * a * x * x);
        }
        case 14: {
            float s = seg_sigmoid(x);
            return s * (1.f + x * (1.f - s));
        }
        case SEG_U_POWC: return powf(x, p0);
        case SEG_U_CLAMP: return fminf(fmaxf(x, p0), p1);
        case SEG_U_SCALE: return x * p0;
        default: return x;
    }
}

extern "C" __global__ void seg_unary(const float *__restrict__ x, float *__restrict__ y, long long n, int fn,
                                     float p0, float p1) {
    pdl_entry();
    for (long long i = blockIdx.x * (long long) blockDim.x + threadIdx.x; i < n; i += (long long) gridDim.x * blockDim.x) {
        y[i] = seg_unary_fn(fn, x[i], p0, p1);
    }
}

// Element i of the output (dims meta[0..rank)) read through strides meta[rank + k*rank ..): operand k's offset.
__device__ __forceinline__ long long seg_offset(long long i, const int *meta, int rank, int k) {
    long long off = 0;
    const int *dims = meta;
    const int *strides = meta + rank * (1 + k);
    for (int d = rank - 1; d >= 0; d--) {
        long long dim = dims[d];
        long long idx = i % dim;
        i /= dim;
        off += idx * strides[d];
    }
    return off;
}

// Binary codes are Op.BinaryFn's ordinals: ADD SUB MUL DIV POW EQ.
extern "C" __global__ void seg_binary(const float *__restrict__ a, const float *__restrict__ b, float *__restrict__ y,
                                      long long n, int fn, const int *__restrict__ meta, int rank) {
    pdl_entry();
    for (long long i = blockIdx.x * (long long) blockDim.x + threadIdx.x; i < n; i += (long long) gridDim.x * blockDim.x) {
        float u = a[seg_offset(i, meta, rank, 0)];
        float v = b[seg_offset(i, meta, rank, 1)];
        float r;
        switch (fn) {
            case 0: r = u + v; break;
            case 1: r = u - v; break;
            case 2: r = u * v; break;
            case 3: r = u / v; break;
            case 4: r = powf(u, v); break;
            default: r = u == v ? 1.f : 0.f; break;
        }
        y[i] = r;
    }
}

// y[i] = x[offset of i through meta's strides]: permute, broadcast (expand), and a mask broadcast to its scores.
extern "C" __global__ void seg_gather(const float *__restrict__ x, float *__restrict__ y, long long n,
                                      const int *__restrict__ meta, int rank) {
    pdl_entry();
    for (long long i = blockIdx.x * (long long) blockDim.x + threadIdx.x; i < n; i += (long long) gridDim.x * blockDim.x) {
        y[i] = x[seg_offset(i, meta, rank, 0)];
    }
}

// rows x cols block copy between row strides: slice, pad (into a zeroed output) and concat.
extern "C" __global__ void seg_copy_rows(const float *__restrict__ x, long long x_off, long long x_stride,
                                         float *__restrict__ y, long long y_off, long long y_stride,
                                         long long rows, long long cols) {
    pdl_entry();
    long long n = rows * cols;
    for (long long i = blockIdx.x * (long long) blockDim.x + threadIdx.x; i < n; i += (long long) gridDim.x * blockDim.x) {
        long long r = i / cols, c = i % cols;
        y[y_off + r * y_stride + c] = x[x_off + r * x_stride + c];
    }
}

extern "C" __global__ void seg_fill(float *__restrict__ y, long long n, float value) {
    pdl_entry();
    for (long long i = blockIdx.x * (long long) blockDim.x + threadIdx.x; i < n; i += (long long) gridDim.x * blockDim.x) {
        y[i] = value;
    }
}

// Op.CausalMask: y[q][k] = 0 where key k is visible to query q (at position q + keys - queries), else -inf.
extern "C" __global__ void seg_causal_mask(float *__restrict__ y, int queries, int keys, int window) {
    pdl_entry();
    long long n = (long long) queries * keys;
    for (long long i = blockIdx.x * (long long) blockDim.x + threadIdx.x; i < n; i += (long long) gridDim.x * blockDim.x) {
        int q = (int) (i / keys), k = (int) (i % keys);
        int pos = q + keys - queries;
        bool visible = k <= pos && (window <= 0 || pos - k < window);
        y[i] = visible ? 0.f : -INFINITY;
    }
}

// ---- reductions -----------------------------------------------------------------------------------------------------

// fn: 0 SUM, 1 MEAN, 2 MAX (Op.ReduceFn's ordinals). Along the last axis: one block per row.
extern "C" __global__ void seg_reduce_rows(const float *__restrict__ x, float *__restrict__ y, long long rows, int n,
                                           int fn) {
    pdl_entry();
    for (long long row = blockIdx.x; row < rows; row += gridDim.x) {
        const float *p = x + row * n;
        float acc = fn == 2 ? -INFINITY : 0.f;
        for (int j = threadIdx.x; j < n; j += blockDim.x) acc = fn == 2 ? fmaxf(acc, p[j]) : acc + p[j];
        acc = fn == 2 ? seg_block_max(acc) : seg_block_sum(acc);
        if (threadIdx.x == 0) y[row] = fn == 1 ? acc / n : acc;
    }
}

// Along an inner axis: x[outer][n][inner] -> y[outer][inner], one thread per output (consecutive threads read
// consecutive addresses).
extern "C" __global__ void seg_reduce_strided(const float *__restrict__ x, float *__restrict__ y, long long outer,
                                              int n, long long inner, int fn) {
    pdl_entry();
    long long total = outer * inner;
    for (long long i = blockIdx.x * (long long) blockDim.x + threadIdx.x; i < total; i += (long long) gridDim.x * blockDim.x) {
        long long o = i / inner, in = i % inner;
        const float *p = x + o * n * inner + in;
        float acc = fn == 2 ? -INFINITY : 0.f;
        for (int j = 0; j < n; j++) acc = fn == 2 ? fmaxf(acc, p[(long long) j * inner]) : acc + p[(long long) j * inner];
        y[i] = fn == 1 ? acc / n : acc;
    }
}

// Sum of all n elements in two passes: per-block partial sums here (grid at most 1024 blocks), then seg_reduce_rows
// over the partials (one row).
extern "C" __global__ void seg_sum_partial(const float *__restrict__ x, float *__restrict__ partial, long long n) {
    pdl_entry();
    float acc = 0.f;
    for (long long i = blockIdx.x * (long long) blockDim.x + threadIdx.x; i < n; i += (long long) gridDim.x * blockDim.x) {
        acc += x[i];
    }
    acc = seg_block_sum(acc);
    if (threadIdx.x == 0) partial[blockIdx.x] = acc;
}

// ---- softmax and norms (last axis, one block per row) ---------------------------------------------------------------

// softmax(cap(x * scale) + mask) with cap(z) = softCap * tanh(z / softCap) when softCap > 0; mask (null = none) has
// x's shape. Stable (the row maximum is subtracted); a row without a finite entry comes out as zeros.
extern "C" __global__ void seg_softmax(const float *__restrict__ x, const float *__restrict__ mask,
                                       float *__restrict__ y, long long rows, int n, float scale, float soft_cap) {
    pdl_entry();
    for (long long row = blockIdx.x; row < rows; row += gridDim.x) {
        const float *p = x + row * n;
        const float *m = mask == nullptr ? nullptr : mask + row * n;
        float *q = y + row * n;
        float mx = -INFINITY;
        for (int j = threadIdx.x; j < n; j += blockDim.x) {
            float z = p[j] * scale;
            if (soft_cap > 0.f) z = soft_cap * tanhf(z / soft_cap);
            if (m != nullptr) z += m[j];
            q[j] = z;
            mx = fmaxf(mx, z);
        }
        mx = seg_block_max(mx);
        if (mx == -INFINITY) {
            for (int j = threadIdx.x; j < n; j += blockDim.x) q[j] = 0.f;
            continue;
        }
        float sum = 0.f;
        for (int j = threadIdx.x; j < n; j += blockDim.x) {
            float e = expf(q[j] - mx);
            q[j] = e;
            sum += e;
        }
        sum = seg_block_sum(sum);
        float inv = 1.f / sum;
        for (int j = threadIdx.x; j < n; j += blockDim.x) q[j] *= inv;
    }
}

// layer = 0: x / sqrt(mean(x^2) + eps) (rms_norm); layer = 1: (x - mean) / sqrt(var + eps) (layer_norm, biased var).
extern "C" __global__ void seg_norm(const float *__restrict__ x, float *__restrict__ y, long long rows, int n,
                                    float eps, int layer) {
    pdl_entry();
    for (long long row = blockIdx.x; row < rows; row += gridDim.x) {
        const float *p = x + row * n;
        float *q = y + row * n;
        float mean = 0.f;
        if (layer) {
            float s = 0.f;
            for (int j = threadIdx.x; j < n; j += blockDim.x) s += p[j];
            mean = seg_block_sum(s) / n;
        }
        float ss = 0.f;
        for (int j = threadIdx.x; j < n; j += blockDim.x) {
            float d = p[j] - mean;
            ss += d * d;
        }
        float inv = rsqrtf(seg_block_sum(ss) / n + eps);
        for (int j = threadIdx.x; j < n; j += blockDim.x) q[j] = (p[j] - mean) * inv;
    }
}

// ---- matmul ---------------------------------------------------------------------------------------------------------

// y[b][m][n] = sum_k a[b][m][k] * B(b)[k][n], B = b[k][n], or b[n][k] when trans_b. Batch b of the output reads a at
// element offset meta[2b] and b at meta[2b + 1] (broadcast batch dimensions repeat an offset). 64x64 output tiles per
// block of 256 threads, each thread 4x4 outputs, k in steps of 16 through shared memory.
#define SEG_MM_T 64
#define SEG_MM_K 16

extern "C" __global__ void __launch_bounds__(256)
seg_matmul(const float *__restrict__ a, const float *__restrict__ b, float *__restrict__ y, int M, int N, int K,
           int trans_b, const long long *__restrict__ offsets) {
    pdl_entry();
    __shared__ float as[SEG_MM_K][SEG_MM_T + 4];
    __shared__ float bs[SEG_MM_K][SEG_MM_T + 4];
    int batch = blockIdx.z;
    const float *A = a + offsets[2 * batch];
    const float *B = b + offsets[2 * batch + 1];
    float *Y = y + (long long) batch * M * N;
    int m0 = blockIdx.y * SEG_MM_T, n0 = blockIdx.x * SEG_MM_T;
    int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
    float acc[4][4] = {};
    for (int k0 = 0; k0 < K; k0 += SEG_MM_K) {
        // 64 x 16 of A and 16 x 64 of B: 1024 values each, 4 per thread
        for (int l = threadIdx.x; l < SEG_MM_T * SEG_MM_K; l += 256) {
            int r = l / SEG_MM_K, c = l % SEG_MM_K;   // A tile: row r (m), column c (k); k fastest = coalesced
            int m = m0 + r, k = k0 + c;
            as[c][r] = (m < M && k < K) ? A[(long long) m * K + k] : 0.f;
            if (trans_b) {
                int n = n0 + r;                       // B stored [N][K]: also k fastest
                bs[c][r] = (n < N && k < K) ? B[(long long) n * K + k] : 0.f;
            }
        }
        if (!trans_b) {
            for (int l = threadIdx.x; l < SEG_MM_T * SEG_MM_K; l += 256) {
                int r = l / SEG_MM_T, c = l % SEG_MM_T;   // B stored [K][N]: n fastest
                int k = k0 + r, n = n0 + c;
                bs[r][c] = (k < K && n < N) ? B[(long long) k * N + n] : 0.f;
            }
        }
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < SEG_MM_K; kk++) {
            float av[4], bv[4];
#pragma unroll
            for (int i = 0; i < 4; i++) av[i] = as[kk][ty + 16 * i];
#pragma unroll
            for (int j = 0; j < 4; j++) bv[j] = bs[kk][tx + 16 * j];
#pragma unroll
            for (int i = 0; i < 4; i++)
#pragma unroll
                for (int j = 0; j < 4; j++) acc[i][j] = fmaf(av[i], bv[j], acc[i][j]);
        }
        __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < 4; i++) {
        int m = m0 + ty + 16 * i;
        if (m >= M) continue;
#pragma unroll
        for (int j = 0; j < 4; j++) {
            int n = n0 + tx + 16 * j;
            if (n < N) Y[(long long) m * N + n] = acc[i][j];
        }
    }
}
