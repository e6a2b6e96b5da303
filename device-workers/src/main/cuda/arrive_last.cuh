// The "last block" of a threadfence reduction (CUDA C++ Programming Guide, memory fence functions): blocks that each
// stored a part of a result count themselves in on a device counter, and the one that completes the count combines
// the parts in the same launch. Used by the MMQ split-K sums (mmq_rows.cuh), the fused decode GEMVs' epilogues
// (fused_decode.cuh) and the fused grouped attention merge (decode_rows.cuh).
//
// arrive_last(counter, arrivals) is true in the one block whose arrival brings *counter to `arrivals` (block-uniform),
// false in the others. Every thread fences its own stores (__threadfence) before the barrier, so they are visible
// device-wide before thread 0 counts the block with atomicAdd; the last block fences again, ordering the count before
// its reads of the other blocks' values (through L2: __ldcg, or plain loads of data this launch has not read yet). The
// last block zeroes the counter: every arrival has happened by then, and the next launch reads it only after this grid
// completes (pdl_entry), so it finds it zeroed (the host clears counters once). Every thread of the block must call it
// (barriers); blocks are one-dimensional in x (thread 0 counts).
#ifndef AETHER_ARRIVE_LAST_CUH
#define AETHER_ARRIVE_LAST_CUH

// `flag`: a shared-memory int thread 0 tells the block's other threads through. A kernel whose dynamic shared memory
// is free at this point passes a word of it (mmq_reduce_last: static shared memory would add to its 111 KB of stages).
__device__ __forceinline__ bool arrive_last(unsigned *counter, unsigned arrivals, volatile int *flag) {
    __threadfence();  // this thread's stores are visible device-wide before thread 0 counts them
    __syncthreads();
    if (threadIdx.x == 0) {
        const bool mine = atomicAdd(counter, 1u) == arrivals - 1;
        if (mine) *counter = 0;  // all arrivals are in: the next launch finds it zeroed
        *flag = mine;
    }
    __syncthreads();
    if (!*flag) return false;
    __threadfence();  // orders the count before this block's reads of the other blocks' values
    return true;
}

// The same with a static shared flag of its own.
__device__ __forceinline__ bool arrive_last(unsigned *counter, unsigned arrivals) {
    __shared__ int last;
    return arrive_last(counter, arrivals, &last);
}
#endif
