// CPU emulation of the MMQ row GEMM (device-workers/src/main/cuda/mmq_rows.cuh) for machines without a GPU: the
// kernel's own source, compiled for the host, with one std::thread per CUDA thread of a block, __syncthreads as a
// block barrier, and the warp-collective instructions (ldmatrix.x4, mma.m16n8k32 .s8) emulated from their PTX ISA
// definitions through per-warp exchange slots (warp_emulation.h, shared with flash_emulate.cpp); the blocks of a
// launch run one at a time in a shuffled order (any of a tile's split-K blocks may be the last to arrive). Checks, for Q4_0 and Q8_0 and several shapes: every output against
// a float64 reference of W . dequant(quant(x)), bitwise equality of one row's outputs alone, at position 0 and at
// position 37 of a 64-row pass, of add in place (add = y) and of the fused split-K sum with the reduce kernel's, that
// every arrival counter is zero again after a launch, and that no ldmatrix phase has a shared-memory bank conflict.
// Each shape prints a hash of its outputs' bits, to compare two versions of the kernel that should agree bitwise.
// Not part of the Maven build; run by hand:
//   g++ -std=c++20 -O2 -pthread -o /tmp/mmq_emulate device-workers/src/test/cuda/mmq_emulate.cpp && /tmp/mmq_emulate
#include <cstdint>

#define MMQ_HOST_EMULATION
alignas(16) uint8_t mmq_smem[128 * 1024];
#define EMU_SMEM mmq_smem
#include "warp_emulation.h"

thread_local Dim3 gridDim;
struct float4 {
    float x, y, z, w;
};
static float half_to_float(uint16_t h) {
    uint32_t s = (h >> 15) & 1, e = (h >> 10) & 31, m = h & 1023, f;
    if (e == 0) {
        if (m == 0) {
            f = s << 31;
        } else {  // subnormal
            float v = std::ldexp((float)m, -24);
            return s ? -v : v;
        }
    } else if (e == 31) {
        f = (s << 31) | 0x7F800000u | (m << 13);
    } else {
        f = (s << 31) | ((e + 112) << 23) | (m << 13);
    }
    float out;
    std::memcpy(&out, &f, 4);
    return out;
}
static uint16_t float_to_half(float v) {  // round to nearest for normal values (enough for test scales)
    uint32_t f;
    std::memcpy(&f, &v, 4);
    uint32_t s = (f >> 31) & 1;
    int e = (int)((f >> 23) & 255) - 127 + 15;
    uint32_t m = f & 0x7FFFFF;
    if (e <= 0) return (uint16_t)(s << 15);
    uint32_t h = (s << 15) | (e << 10) | (m >> 13);
    if ((m & 0x1FFF) > 0x1000 || ((m & 0x1FFF) == 0x1000 && (h & 1))) h++;
    return (uint16_t)h;
}
inline float __half2float(__half h) { return half_to_float(h.bits); }
inline __half __ushort_as_half(unsigned short bits) { return __half{bits}; }
inline float __fmaf_rn(float a, float b, float c) { return std::fma(a, b, c); }
inline float __fmul_rn(float a, float b) {
    volatile float r = a * b;
    return r;
}
inline float __fsub_rn(float a, float b) {
    volatile float r = a - b;
    return r;
}
inline float __int_as_float(int i) {
    float f;
    std::memcpy(&f, &i, 4);
    return f;
}
inline uint32_t __vsub4(uint32_t a, uint32_t b) {
    uint32_t r = 0;
    for (int i = 0; i < 4; i++) r |= (uint32_t)(uint8_t)((uint8_t)(a >> 8 * i) - (uint8_t)(b >> 8 * i)) << 8 * i;
    return r;
}
// blocks run one after another here (in a shuffled order, see run), so the split-K arrival counter needs no more
inline unsigned atomicAdd(unsigned *p, unsigned v) {
    return std::atomic_ref<unsigned>(*p).fetch_add(v);
}
inline void __threadfence() { std::atomic_thread_fence(std::memory_order_seq_cst); }
inline float __ldcg(const float *p) { return *p; }
inline float4 __ldcg(const float4 *p) {
    if (reinterpret_cast<uintptr_t>(p) % 16 != 0) {
        std::fprintf(stderr, "16-byte load from %p\n", (const void *)p);
        std::abort();
    }
    return *p;
}

constexpr int THREADS = 256;

inline void mmq_cp_async16(uint32_t dst, const void *src, bool valid) {
    if (valid) {
        std::memcpy(mmq_smem + dst, src, 16);
    } else {
        std::memset(mmq_smem + dst, 0, 16);
    }
}
inline void mmq_cp_async_commit() {}
template <int pending>
inline void mmq_cp_async_wait() {}

// mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32, lane = 4 g + i: A {row g k 4i.., row g+8 k 4i.., row g k 16+4i..,
// row g+8 k 16+4i..}, B {k 4i.., k 16+4i..} of column g, C {(g, 2i), (g, 2i+1), (g+8, 2i), (g+8, 2i+1)}.
inline void mma_s8_16x8x32(int &c0, int &c1, int &c2, int &c3, uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3,
                           uint32_t b0, uint32_t b1) {
    int lane = threadIdx.x & 31;
    uint32_t regs[32][6];
    mma_gather({a0, a1, a2, a3, b0, b1}, regs);
    int8_t A[16][32], B[32][8];
    for (int l = 0; l < 32; l++) {
        int g = l >> 2, i = l & 3;
        for (int e = 0; e < 4; e++) {
            A[g][4 * i + e] = (int8_t)(regs[l][0] >> 8 * e);
            A[g + 8][4 * i + e] = (int8_t)(regs[l][1] >> 8 * e);
            A[g][16 + 4 * i + e] = (int8_t)(regs[l][2] >> 8 * e);
            A[g + 8][16 + 4 * i + e] = (int8_t)(regs[l][3] >> 8 * e);
            B[4 * i + e][g] = (int8_t)(regs[l][4] >> 8 * e);
            B[16 + 4 * i + e][g] = (int8_t)(regs[l][5] >> 8 * e);
        }
    }
    int g = lane >> 2, i = lane & 3;
    auto dot = [&](int m, int n) {
        int s = 0;
        for (int k = 0; k < 32; k++) s += A[m][k] * B[k][n];
        return s;
    };
    c0 += dot(g, 2 * i), c1 += dot(g, 2 * i + 1), c2 += dot(g + 8, 2 * i), c3 += dot(g + 8, 2 * i + 1);
}

#include "../../main/cuda/mmq_rows.cuh"

// ---- host side ---------------------------------------------------------------------------------------------------

static int splitsFor(int type, int m, int k) {  // CudaRowKernels.mmqSplits
    int rowBlocks = (m + 127) / 128, tiles = (k / 32 + (type == 0 ? 7 : 3)) / (type == 0 ? 8 : 4);
    if (rowBlocks >= 132) return 1;
    return std::max(1, std::min(tiles, 264 / rowBlocks));
}

static int failures = 0;

struct Matrix {
    int type, m, k;
    std::vector<uint8_t> qs;
    std::vector<__half> d;
};

static std::mt19937 schedule(777);  // block order of each emulated launch

// One launch: the grid's blocks in a random order (on a GPU any block of an output tile may arrive last at the split-K
// counter), each block's 256 threads concurrently. Checks that the launch leaves every counter at zero.
static std::vector<float> run(const Matrix &w, const std::vector<int8_t> &xq, const std::vector<float2> &xds,
                              const std::vector<float> *add, int rows, bool addInPlace = false, bool fused = true) {
    int M = w.m, K = w.k, splits = splitsFor(w.type, M, K);
    std::vector<float> y((size_t)rows * M, NAN), ws((size_t)splits * rows * M, NAN);
    if (addInPlace) y = *add;  // add aliases y, as the residual stream's in-place update
    Dim3 grid = {(unsigned)((M + 127) / 128), (unsigned)((rows + 63) / 64), (unsigned)splits};
    std::vector<unsigned> counters((size_t)grid.x * grid.y, 0);
    for (Dim3 b : shuffled_blocks(grid, schedule)) {
        run_block(b, THREADS, [&] {
            gridDim = grid;
            (w.type == 0 ? gemv_rows_mmq_q4_0 : gemv_rows_mmq_q8_0)(
                w.qs.data(), w.d.data(), xq.data(), xds.data(), addInPlace ? y.data() : add ? add->data() : nullptr,
                y.data(), ws.data(), fused ? counters.data() : nullptr, M, K, rows, splits);
        });
    }
    if (!fused && splits > 1) {  // gemv_rows_mmq_reduce, the second launch of -Daether.cuda.mmqReduce=kernel
        const float *a = addInPlace ? y.data() : add ? add->data() : nullptr;
        for (unsigned by = 0; by < (unsigned)rows; by++)
            for (unsigned bx = 0; bx < (unsigned)((M + 255) / 256); bx++)
                for (unsigned t = 0; t < 256; t++) {
                    threadIdx = {t, 0, 0};
                    blockIdx = {bx, by, 0};
                    gemv_rows_mmq_reduce(ws.data(), a, y.data(), M, rows, splits);
                }
    }
    for (unsigned c : counters)
        if (c != 0) {
            std::printf("FAIL split-K counter left at %u\n", c);
            failures++;
            break;
        }
    return y;
}

static Matrix randomMatrix(std::mt19937 &rng, int type, int m, int k) {
    Matrix w{type, m, k, {}, {}};
    int nb = k / 32;
    w.qs.resize((size_t)m * nb * (type == 0 ? 16 : 32));
    std::uniform_int_distribution<int> byte(0, 255);
    for (auto &b : w.qs) b = (uint8_t)byte(rng);
    std::uniform_real_distribution<float> sc(0.001f, 0.02f);
    for (size_t i = 0; i < (size_t)m * nb; i++) w.d.push_back(__half{float_to_half(sc(rng))});
    return w;
}

static double weight(const Matrix &w, int row, int col) {
    int nb = w.k / 32, b = col / 32, j = col % 32;
    size_t blk = (size_t)row * nb + b;
    int q;
    if (w.type == 0) {
        uint8_t byte = w.qs[blk * 16 + (j & 15)];
        q = (j < 16 ? byte & 15 : byte >> 4) - 8;
    } else {
        q = (int8_t)w.qs[blk * 32 + j];
    }
    return (double)half_to_float(w.d[blk].bits) * q;
}

// FNV-1a of the outputs' bits: a kernel change that keeps the summation order must keep these (compare two builds)
static uint64_t bitsHash(const std::vector<float> &v) {
    uint64_t h = 1469598103934665603ull;
    for (float f : v) {
        uint32_t b;
        std::memcpy(&b, &f, 4);
        h = (h ^ b) * 1099511628211ull;
    }
    return h;
}

static void check(int type, int m, int k, int rows, std::mt19937 &rng) {
    Matrix w = randomMatrix(rng, type, m, k);
    int nb = k / 32;
    std::vector<int8_t> xq((size_t)rows * k);
    std::vector<float2> xds((size_t)rows * nb);
    std::uniform_int_distribution<int> q(-127, 127);
    std::uniform_real_distribution<float> sc(0.005f, 0.05f), u(-1, 1);
    for (auto &v : xq) v = (int8_t)q(rng);
    for (auto &v : xds) v = {sc(rng), 0.f};
    std::vector<float> add((size_t)rows * m);
    for (auto &v : add) v = u(rng);
    std::vector<float> y = run(w, xq, xds, nullptr, rows), ya = run(w, xq, xds, &add, rows);
    std::vector<float> yi = run(w, xq, xds, &add, rows, true);
    bool inPlace = std::memcmp(ya.data(), yi.data(), ya.size() * 4) == 0;
    std::vector<float> yk = run(w, xq, xds, &add, rows, true, false);  // the two-launch reduction: the same bits
    bool twoLaunch = std::memcmp(ya.data(), yk.data(), ya.size() * 4) == 0;
    double worst = 0;
    for (int t = 0; t < rows; t++) {
        double num = 0, den = 0;
        for (int r = 0; r < m; r++) {
            double ref = 0;
            for (int c = 0; c < k; c++) ref += weight(w, r, c) * xds[(size_t)t * nb + c / 32].x * xq[(size_t)t * k + c];
            double e = y[(size_t)t * m + r] - ref, ea = ya[(size_t)t * m + r] - (ref + add[(size_t)t * m + r]);
            num += e * e + ea * ea;
            den += 2 * ref * ref;
            if (!std::isfinite(y[(size_t)t * m + r]) || !std::isfinite(ya[(size_t)t * m + r])) num = INFINITY;
        }
        worst = std::max(worst, std::sqrt(num / den));
    }
    bool ok = worst < 1e-5 && inPlace && twoLaunch;
    failures += !ok;
    std::printf("%s %s %d x %d, %d rows, %d splits: relative error %.2e, add in place %s, reduce kernel %s, bits "
                "%016llx\n",
                ok ? "ok  " : "FAIL", type == 0 ? "Q4_0" : "Q8_0", m, k, rows, splitsFor(type, m, k), worst,
                inPlace ? "bitwise equal" : "DIFFERENT", twoLaunch ? "bitwise equal" : "DIFFERENT",
                (unsigned long long)(bitsHash(y) ^ 31 * bitsHash(ya)));
}

static void checkPosition(int type, int m, int k, std::mt19937 &rng) {
    Matrix w = randomMatrix(rng, type, m, k);
    int nb = k / 32;
    std::uniform_int_distribution<int> q(-127, 127);
    std::uniform_real_distribution<float> sc(0.005f, 0.05f);
    std::vector<int8_t> mine(k);
    std::vector<float2> myd(nb);
    for (auto &v : mine) v = (int8_t)q(rng);
    for (auto &v : myd) v = {sc(rng), 0.f};
    std::vector<std::vector<float>> outs;
    int positions[3] = {0, 0, 37}, passRows[3] = {1, 64, 64};
    for (int v = 0; v < 3; v++) {
        int rows = passRows[v];
        std::vector<int8_t> xq((size_t)rows * k);
        std::vector<float2> xds((size_t)rows * nb);
        for (auto &e : xq) e = (int8_t)q(rng);
        for (auto &e : xds) e = {sc(rng), 0.f};
        std::copy(mine.begin(), mine.end(), xq.begin() + (size_t)positions[v] * k);
        std::copy(myd.begin(), myd.end(), xds.begin() + (size_t)positions[v] * nb);
        std::vector<float> y = run(w, xq, xds, nullptr, rows);
        outs.emplace_back(y.begin() + (size_t)positions[v] * m, y.begin() + (size_t)(positions[v] + 1) * m);
    }
    bool ok = std::memcmp(outs[0].data(), outs[1].data(), m * 4) == 0 &&
              std::memcmp(outs[0].data(), outs[2].data(), m * 4) == 0;
    failures += !ok;
    std::printf("%s %s %d x %d: one row alone, at 0 and at 37 of 64: %s\n", ok ? "ok  " : "FAIL",
                type == 0 ? "Q4_0" : "Q8_0", m, k, ok ? "bitwise equal" : "DIFFERENT");
}

int main() {
    std::mt19937 rng(12345);
    check(0, 77, 2080, 9, rng);
    check(0, 300, 4096, 70, rng);
    check(0, 130, 256, 1, rng);
    check(0, 77, 4096, 33, rng);
    check(1, 77, 2080, 64, rng);
    check(1, 300, 1024, 8, rng);
    check(1, 129, 4096, 7, rng);
    check(0, 16900, 64, 3, rng);  // 133 row blocks: no split
    check(1, 16900, 96, 2, rng);
    checkPosition(0, 300, 4096, rng);
    checkPosition(1, 77, 2080, rng);
    checkPosition(0, 16900, 64, rng);
    // after the others, so that their inputs (and bit hashes) stay those of earlier versions of this file
    check(0, 200, 2336, 27, rng);  // 4 n-tiles (the MMA loop compiled for 4), a short last K tile, 9 splits
    check(1, 140, 1056, 21, rng);  // 3 n-tiles padded to 4
    checkPosition(1, 300, 1056, rng);
    return finish(failures);
}
