// The CUDA execution model on the CPU, shared by the kernel emulators (mmq_emulate.cpp, flash_emulate.cpp): the
// kernels' own source compiled for the host, one std::thread per CUDA thread of a block, __syncthreads as a block
// barrier, the warp-collective instructions (ldmatrix.x4 with and without .trans, and the operand exchange of
// mma.sync) emulated from their PTX ISA definitions through per-warp exchange slots, and a shared-memory bank-conflict
// count of every ldmatrix phase. The blocks of a launch run one at a time (run_block), in a shuffled order
// (shuffled_blocks).
//
// The including file first defines its shared memory, a 16-byte aligned byte array, and names it EMU_SMEM (the
// kernels declare it `extern __shared__`: mmq_smem, fa_smem), and declares gridDim. What differs between the kernels
// (the f16 conversions, the mma's element types, shuffles, cp.async timing) stays in each emulator.
#ifndef AETHER_WARP_EMULATION_H
#define AETHER_WARP_EMULATION_H

#include <algorithm>
#include <atomic>
#include <barrier>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <thread>
#include <vector>

#ifndef EMU_SMEM
#error "define EMU_SMEM (the emulated shared memory array) before including warp_emulation.h"
#endif

#define __device__
#define __forceinline__ inline
#define __global__
#define __launch_bounds__(...)
#define __restrict__ __restrict
#define __shared__
#define __align__(n)  // the emulated shared memory is 16-byte aligned

struct Dim3 {
    unsigned x = 0, y = 0, z = 0;
};
thread_local Dim3 threadIdx, blockIdx;
struct float2 {
    float x, y;
};
struct __half {
    uint16_t bits;
};
inline int min(int a, int b) { return a < b ? a : b; }

std::unique_ptr<std::barrier<>> block_barrier;
inline void __syncthreads() { block_barrier->arrive_and_wait(); }

struct WarpExchange {
    std::barrier<> bar{32};
    uint32_t addr[32];
    uint32_t regs[32][6];
    float vals[32];
};
WarpExchange *warps;
std::atomic<long> ldmatrix_conflicts{0}, ldmatrix_phases{0};

// programmatic dependent launch (pdl.cuh): nothing to wait for in the emulation
static inline void pdl_entry() {}

// ldmatrix.sync.aligned.m8n8.x4(.trans).shared.b16: lane L gives the address of row L % 8 of matrix L / 8; lane l
// receives from each matrix q the halves (row l / 4, columns 2 (l % 4), +1), or with .trans (rows 2 (l % 4), +1,
// column l / 4), the lower-numbered one in the low 16 bits. Without .trans that is the 32 bits at row l / 4, bytes
// 4 (l % 4) .. 4 (l % 4) + 3, whatever the element type (MMQ's int8 fragments).
inline void ldmatrix_x4(uint32_t addr, uint32_t *r, bool trans) {
    int lane = threadIdx.x & 31;
    WarpExchange &w = warps[threadIdx.x >> 5];
    if (addr % 16 != 0) {
        std::fprintf(stderr, "ldmatrix row address %u not 16-byte aligned\n", addr);
        std::abort();
    }
    w.addr[lane] = addr;
    w.bar.arrive_and_wait();
    if (lane == 0) {  // each matrix is one shared-memory phase: its 8 rows of 16 bytes should use 32 distinct banks
        for (int q = 0; q < 4; q++) {
            bool used[32] = {};
            for (int row = 0; row < 8; row++)
                for (int word = 0; word < 4; word++) {
                    int bank = (w.addr[q * 8 + row] / 4 + word) % 32;
                    if (used[bank]) ldmatrix_conflicts++;
                    used[bank] = true;
                }
            ldmatrix_phases++;
        }
    }
    for (int q = 0; q < 4; q++) {
        uint16_t lo, hi;
        if (!trans) {
            const uint8_t *row = EMU_SMEM + w.addr[q * 8 + lane / 4];
            std::memcpy(&lo, row + 4 * (lane % 4), 2);
            std::memcpy(&hi, row + 4 * (lane % 4) + 2, 2);
        } else {
            std::memcpy(&lo, EMU_SMEM + w.addr[q * 8 + 2 * (lane % 4)] + 2 * (lane / 4), 2);
            std::memcpy(&hi, EMU_SMEM + w.addr[q * 8 + 2 * (lane % 4) + 1] + 2 * (lane / 4), 2);
        }
        r[q] = lo | (uint32_t)hi << 16;
    }
    w.bar.arrive_and_wait();
}
inline void mmq_ldmatrix_x4(uint32_t addr, uint32_t &r0, uint32_t &r1, uint32_t &r2, uint32_t &r3) {
    uint32_t r[4];
    ldmatrix_x4(addr, r, false);
    r0 = r[0], r1 = r[1], r2 = r[2], r3 = r[3];
}
inline uint32_t mmq_smem_address(const void *p) { return (uint32_t)((const uint8_t *)p - EMU_SMEM); }

// The operands of one mma.sync of the warp (lane = 4 g + i holds a[0..3] of A and b[0..1] of B, as the PTX ISA lays
// out the fragments of its shape): every lane receives all 32 lanes' registers, to rebuild the A and B tiles from.
inline void mma_gather(const uint32_t (&mine)[6], uint32_t (&all)[32][6]) {
    WarpExchange &w = warps[threadIdx.x >> 5];
    std::memcpy(w.regs[threadIdx.x & 31], mine, sizeof mine);
    w.bar.arrive_and_wait();
    std::memcpy(all, w.regs, sizeof w.regs);
    w.bar.arrive_and_wait();
}

// The blocks of a grid in a random order: on a GPU any block may run first or last (a split-K tile's last arrival).
inline std::vector<Dim3> shuffled_blocks(Dim3 grid, std::mt19937 &rng) {
    std::vector<Dim3> order;
    for (unsigned bz = 0; bz < grid.z; bz++)
        for (unsigned by = 0; by < grid.y; by++)
            for (unsigned bx = 0; bx < grid.x; bx++) order.push_back({bx, by, bz});
    std::shuffle(order.begin(), order.end(), rng);
    return order;
}

// Runs block b: `threads` std::threads, each with its threadIdx and blockIdx, calling body(); the shared memory holds
// garbage first, as uninitialized shared memory does.
template <class Body>
void run_block(Dim3 b, int threads, Body body) {
    std::memset(EMU_SMEM, 0xA5, sizeof EMU_SMEM);
    block_barrier = std::make_unique<std::barrier<>>(threads);
    std::vector<WarpExchange> wx(threads / 32);
    warps = wx.data();
    std::vector<std::thread> ts;
    for (int t = 0; t < threads; t++) {
        ts.emplace_back([&, t] {
            threadIdx = {(unsigned)t, 0, 0};
            blockIdx = b;
            body();
        });
    }
    for (auto &t : ts) t.join();
}

// The end of an emulator's run: the ldmatrix bank-conflict check (one more failure if any phase had a conflict), the
// summary line, and the exit status (nonzero on any failure).
inline int finish(int failures) {
    bool conflictFree = ldmatrix_conflicts == 0;
    failures += !conflictFree;
    std::printf("%s ldmatrix: %ld bank conflicts in %ld phases\n", conflictFree ? "ok  " : "FAIL",
                ldmatrix_conflicts.load(), ldmatrix_phases.load());
    std::printf(failures ? "%d FAILED\n" : "all passed\n", failures);
    return failures != 0;
}
#endif
