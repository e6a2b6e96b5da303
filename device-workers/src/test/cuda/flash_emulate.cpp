// CPU emulation of the flash prefill attention (device-workers/src/main/cuda/flash_attn.cuh) for machines without
// a GPU: the kernel's own source, compiled for the host, with one std::thread per CUDA thread of a block, __syncthreads
// as a block barrier, and the warp-collective instructions (ldmatrix.x4 and .x4.trans, mma.m16n8k16 .f16, shfl.xor)
// emulated from their PTX ISA definitions through per-warp exchange slots (warp_emulation.h, shared with
// mmq_emulate.cpp; the shuffles and cp.async are this file's). cp.async copies are deferred to the
// cp.async.wait_group that must cover them (the latest a GPU may land them), so a missing wait or barrier reads the
// garbage shared memory starts with. The blocks of a launch run one at a time in a shuffled order. Checks, for several
// (heads, KV heads, head size, first position, tokens): every output against a float64 reference (and one that rounds
// the query to f16 as the kernel does) within the tolerances CudaFlashPrefillTest states, that blocks of 8 warps give
// the bits of blocks of 4 (each warp's 16 rows see the same tiles either way), that no output is left
// unwritten (outputs start as NaN) and no read passes a row's causal range (the cache is NaN there), and that no
// ldmatrix phase has a shared-memory bank conflict. Not part of the Maven build; run by hand:
//   g++ -std=c++20 -O2 -pthread -o /tmp/flash_emulate device-workers/src/test/cuda/flash_emulate.cpp \
//     && /tmp/flash_emulate
// (with -fsanitize=address, a read past the cache or the queries is reported: some shapes end the cache at the chunk)
#include <cstdint>

#define FLASH_HOST_EMULATION
#define P_POS 1
#define P_SLOT 2
alignas(16) uint8_t fa_smem[96 * 1024];
#define EMU_SMEM fa_smem
#include "warp_emulation.h"

Dim3 gridDim;
inline float2 make_float2(float x, float y) { return {x, y}; }
struct __half2 {
    __half x, y;
};
static uint16_t float_to_half(float v) {  // round to nearest even, subnormals included (the compiler's _Float16)
    _Float16 h = (_Float16)v;
    uint16_t b;
    std::memcpy(&b, &h, 2);
    return b;
}
static float half_to_float(uint16_t b) {
    _Float16 h;
    std::memcpy(&h, &b, 2);
    return (float)h;
}
inline __half2 __floats2half2_rn(float a, float b) { return {{float_to_half(a)}, {float_to_half(b)}}; }

inline float __shfl_xor_sync(unsigned, float v, int o) {
    int lane = threadIdx.x & 31;
    WarpExchange &w = warps[threadIdx.x >> 5];
    w.vals[lane] = v;
    w.bar.arrive_and_wait();
    float r = w.vals[lane ^ o];
    w.bar.arrive_and_wait();
    return r;
}

// cp.async: recorded, copied when a wait_group leaves at most `pending` newer groups in flight
struct AsyncCopy {
    uint32_t dst;
    const void *src;
    bool valid;
};
thread_local std::vector<AsyncCopy> open_group;
thread_local std::vector<std::vector<AsyncCopy>> committed;
inline void mmq_cp_async16(uint32_t dst, const void *src, bool valid) {
    if (dst % 16 != 0 || reinterpret_cast<uintptr_t>(src) % 16 != 0) {
        std::fprintf(stderr, "cp.async of 16 bytes at shared %u from %p: not 16-byte aligned\n", dst, src);
        std::abort();
    }
    if (dst + 16 > sizeof fa_smem) {
        std::fprintf(stderr, "cp.async past the emulated shared memory (%u)\n", dst);
        std::abort();
    }
    open_group.push_back({dst, src, valid});
}
inline void mmq_cp_async_commit() {
    committed.push_back(std::move(open_group));
    open_group.clear();
}
template <int pending>
inline void mmq_cp_async_wait() {
    while ((int)committed.size() > pending) {
        for (const AsyncCopy &c : committed.front()) {
            if (c.valid) {
                std::memcpy(fa_smem + c.dst, c.src, 16);
            } else {
                std::memset(fa_smem + c.dst, 0, 16);
            }
        }
        committed.erase(committed.begin());
    }
}

inline void fa_ldmatrix_x4_trans(uint32_t addr, uint32_t &r0, uint32_t &r1, uint32_t &r2, uint32_t &r3) {
    uint32_t r[4];
    ldmatrix_x4(addr, r, true);
    r0 = r[0], r1 = r[1], r2 = r[2], r3 = r[3];
}

inline uint32_t gm_pack(float a, float b) { return float_to_half(a) | (uint32_t)float_to_half(b) << 16; }

// mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32, lane = 4 g + i: A {row g k 2i.., row g+8 k 2i.., row g k
// 2i+8.., row g+8 k 2i+8..}, B {k 2i.., k 2i+8..} of column g, C {(g, 2i), (g, 2i+1), (g+8, 2i), (g+8, 2i+1)}; the
// products are exact in f32 (f16 x f16), summed here in k order.
inline void gm_mma(float *c, const uint32_t *a, const uint32_t *b) {
    int lane = threadIdx.x & 31;
    uint32_t regs[32][6];
    mma_gather({a[0], a[1], a[2], a[3], b[0], b[1]}, regs);
    float A[16][16], B[16][8];
    for (int l = 0; l < 32; l++) {
        int g = l >> 2, i = l & 3;
        for (int e = 0; e < 2; e++) {
            A[g][2 * i + e] = half_to_float((uint16_t)(regs[l][0] >> 16 * e));
            A[g + 8][2 * i + e] = half_to_float((uint16_t)(regs[l][1] >> 16 * e));
            A[g][2 * i + 8 + e] = half_to_float((uint16_t)(regs[l][2] >> 16 * e));
            A[g + 8][2 * i + 8 + e] = half_to_float((uint16_t)(regs[l][3] >> 16 * e));
            B[2 * i + e][g] = half_to_float((uint16_t)(regs[l][4] >> 16 * e));
            B[2 * i + 8 + e][g] = half_to_float((uint16_t)(regs[l][5] >> 16 * e));
        }
    }
    int g = lane >> 2, i = lane & 3;
    auto dot = [&](int m, int n) {
        float s = 0.f;
        for (int k = 0; k < 16; k++) s += A[m][k] * B[k][n];
        return s;
    };
    c[0] += dot(g, 2 * i), c[1] += dot(g, 2 * i + 1), c[2] += dot(g + 8, 2 * i), c[3] += dot(g + 8, 2 * i + 1);
}

#include "../../main/cuda/flash_attn.cuh"

// ---- host side ---------------------------------------------------------------------------------------------------

static int failures = 0;
static std::mt19937 schedule(777);  // block order of each emulated launch

// float64 softmax(q.K^T * scale).V of token t's head h over positions [0, len)
static void reference(const std::vector<float> &q, size_t qoff, double scale, const std::vector<uint16_t> &kc,
                      const std::vector<uint16_t> &vc, size_t koff, int D, int len, double *out) {
    std::vector<double> s(len);
    double m = -INFINITY;
    for (int p = 0; p < len; p++) {
        double acc = 0;
        for (int i = 0; i < D; i++) acc += (double)q[qoff + i] * half_to_float(kc[koff + (size_t)p * D + i]);
        s[p] = acc * scale;
        m = std::max(m, s[p]);
    }
    double l = 0;
    for (int p = 0; p < len; p++) l += s[p] = std::exp(s[p] - m);
    for (int i = 0; i < D; i++) out[i] = 0;
    for (int p = 0; p < len; p++)
        for (int i = 0; i < D; i++) out[i] += s[p] / l * half_to_float(vc[koff + (size_t)p * D + i]);
}

// slack: cache positions past the chunk (NaN); with 0 the slot, and the cache vectors, end at the chunk's last token
// (built with -fsanitize=address, a read past them is reported)
// Runs the kernel of head size D with blocks of `warps` warps; returns the output halves.
static std::vector<uint16_t> launch(int warps, int D, const std::vector<float> &q, const std::vector<uint16_t> &kc,
                                    const std::vector<uint16_t> &vc, const int *params, int N, int H, int Hkv, int ctx,
                                    float scale, int qstride) {
    const int threads = warps * 32, G = H / Hkv;
    std::vector<uint16_t> out((size_t)N * H * D, 0xFFFF);  // NaN: an output left unwritten shows
    gridDim = {(unsigned)Hkv, (unsigned)((N * G + warps * 16 - 1) / (warps * 16)), 1};
    auto kernel = D == 64 ? (warps == 4 ? attn_prefill_flash_d64 : attn_prefill_flash_d64_w8)
                          : (warps == 4 ? attn_prefill_flash_d128 : attn_prefill_flash_d128_w8);
    const __half *kp = reinterpret_cast<const __half *>(kc.data()), *vp = reinterpret_cast<const __half *>(vc.data());
    if (reinterpret_cast<uintptr_t>(kp) % 16 || reinterpret_cast<uintptr_t>(vp) % 16) {
        std::fprintf(stderr, "cache vectors not 16-byte aligned\n");
        std::abort();
    }
    for (Dim3 b : shuffled_blocks(gridDim, schedule)) {
        run_block(b, threads, [&] {
            open_group.clear();
            committed.clear();
            kernel(q.data(), kp, vp, params, reinterpret_cast<__half *>(out.data()), N, H, Hkv, ctx, scale, qstride);
            if (!committed.empty() || !open_group.empty()) {
                std::fprintf(stderr, "cp.async groups left in flight at the kernel's end\n");
                std::abort();
            }
        });
    }
    return out;
}

static void check(int H, int Hkv, int D, int pos, int N, int slack, std::mt19937 &rng) {
    const int ctx = pos + N + slack, slots = 2, slot = 1, len = pos + N, G = H / Hkv;
    const int qstride = (H + 2 * Hkv) * D;
    std::normal_distribution<float> gauss(0.f, 1.f);
    std::vector<float> q((size_t)N * qstride);
    for (auto &v : q) v = gauss(rng);
    // 16-byte aligned caches, NaN (0xFFFF) past the sequence and in the other slot
    size_t halves = (size_t)slots * Hkv * ctx * D;
    std::vector<uint16_t> kc(halves, 0xFFFF), vc(halves, 0xFFFF);
    for (int g = 0; g < Hkv; g++)
        for (int p = 0; p < len; p++)
            for (int i = 0; i < D; i++) {
                size_t at = (((size_t)slot * Hkv + g) * ctx + p) * D + i;
                kc[at] = float_to_half(2 * gauss(rng));
                vc[at] = float_to_half(gauss(rng));
            }
    int params[4] = {0, pos, slot, 0};
    const float scale = 1.f / std::sqrt((float)D);
    std::vector<uint16_t> out = launch(4, D, q, kc, vc, params, N, H, Hkv, ctx, scale, qstride);
    const unsigned blocks = gridDim.x * gridDim.y;
    // blocks of 8 warps: each warp has the same 16 rows and tiles as with 4, so the same bits
    std::vector<uint16_t> out8 = launch(8, D, q, kc, vc, params, N, H, Hkv, ctx, scale, qstride);
    const bool same = out8 == out;
    // the query as the kernel rounds it
    const float qscale = scale * 1.4426950408889634f;
    std::vector<float> qr(q.size());
    for (size_t i = 0; i < q.size(); i++) qr[i] = half_to_float(float_to_half(q[i] * qscale));
    double worstExact = 0, worstRounded = 0;
    bool finite = true;
    std::vector<double> ref(D), refr(D);
    for (int t = 0; t < N; t++) {
        double ne = 0, nr = 0, den = 0;
        for (int h = 0; h < H; h++) {
            size_t koff = ((size_t)slot * Hkv + h / G) * ctx * D;
            reference(q, (size_t)t * qstride + (size_t)h * D, scale, kc, vc, koff, D, pos + t + 1, ref.data());
            reference(qr, (size_t)t * qstride + (size_t)h * D, 1 / 1.4426950408889634, kc, vc, koff, D, pos + t + 1,
                      refr.data());
            for (int i = 0; i < D; i++) {
                float o = half_to_float(out[(size_t)t * H * D + (size_t)h * D + i]);
                if (!std::isfinite(o)) finite = false;
                ne += (o - ref[i]) * (o - ref[i]);
                nr += (o - refr[i]) * (o - refr[i]);
                den += ref[i] * ref[i];
            }
        }
        worstExact = std::max(worstExact, std::sqrt(ne / den));
        worstRounded = std::max(worstRounded, std::sqrt(nr / den));
    }
    bool ok = finite && same && worstExact < 3e-3 && worstRounded < 1.5e-3;
    failures += !ok;
    std::printf("%s H=%d Hkv=%d D=%d pos=%d tokens=%d (%u blocks of 4 warps): worst token vs float64 %.2e, vs "
                "float64 with the f16 query %.2e; 8 warps %s%s\n",
                ok ? "ok  " : "FAIL", H, Hkv, D, pos, N, blocks, worstExact, worstRounded,
                same ? "bitwise equal" : "DIFFERENT", finite ? "" : ", NON-FINITE outputs");
}

int main() {
    std::mt19937 rng(2026);
    check(8, 2, 64, 0, 37, 80, rng);     // G = 4, tokens not a multiple of the tile
    check(4, 4, 128, 5, 9, 80, rng);     // no GQA
    check(6, 2, 64, 70, 50, 80, rng);    // G = 3: tiles cut through a token's heads; mid-cache, diagonal across tiles
    check(16, 1, 128, 1000, 1, 0, rng);  // one token deep in the cache
    check(8, 8, 64, 63, 1, 80, rng);     // one token at the last position of a KV tile
    check(2, 1, 128, 0, 200, 0, rng);    // several row tiles, heaviest first
    check(8, 2, 128, 64, 65, 80, rng);   // starts on a tile boundary
    check(32, 8, 128, 300, 40, 80, rng); // Llama 8B's heads
    check(32, 8, 64, 0, 64, 0, rng);     // the 1B preset's heads
    return finish(failures);
}
