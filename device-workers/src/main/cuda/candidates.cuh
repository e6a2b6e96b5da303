// Sampling candidates on the device (CudaKernels.sampleCandidates; the host side is aether.llm.sampling.Candidates).
//
// A sampled request does not need its whole logits row: the host sampler (aether.llm.sampling.Sampler) keeps at most
// top-k candidates, or the sorted prefix that reaches top-p, or the tokens above min-p, and draws among those. This
// kernel takes one block per logits row and
//   1. copies the row to `work` (the raw logits stay as they are: a row the host cannot decide from the candidates is
//      downloaded raw and sampled by the host path) and applies that row's sparse adjustments in the host's float
//      arithmetic: logit bias (v + b), then llama.cpp's penalties (v <= 0 ? v * repeat : v / repeat, then v - sub,
//      where sub = count * frequency + presence was rounded to float by the host). The _rn intrinsics keep nvcc from
//      contracting these into an FMA, so every adjusted value is bit-identical to the host's;
//   2. flags the row when a raw or adjusted value is NaN or +Infinity (the host path then reports it);
//   3. selects the CAND_K first tokens in the host's order (larger value first, equal values: lower id first) by a
//      radix select on an order-preserving key (4 passes of 8 bits) and one pass in id order that takes the tied
//      tokens of the threshold lowest id first; sorts them (rank sort: the order is total);
//   4. sums exp((double) v - max) over the whole adjusted row in double (the normaliser of top-p without top-k and of
//      log-probabilities; the host allows for the different summation order, see Sampler's candidate path);
//   5. for a row whose header carries a uniform u in [0, 1) (the sampler's next random draw) and 1/T: the host's draw
//      over the whole vocabulary in id order (Sampler.draw without filters: terms exp(((double) v - max) * (1/T)), the
//      first id whose cumulative sum exceeds u * S, S the sum of all terms), see cand_draw. The crossing is decided
//      only when the target lies more than CAND_DRAW_MARGIN * S from both cumulative sums around it: the host's sums
//      (its exp, its order) differ from these by far less, so the host's draw then gives the same id.
//
// Grid: one block per selected row. Adjustments (int words): per block 8 header words {logits row, first entry word,
// entry count, repeat penalty bits, u low, u high, 1/T low, 1/T high} (u, 1/T doubles; u NaN or negative: no draw),
// then entries of 4 words {token id, flags (1 = bias, 2 = penalty), bias bits, sub bits}; a token appears at most once
// per row. Block b works in work[b * n ..) and writes its output row b, CAND_STRIDE words: [0, K) ids, [K, 2K) value
// bits, [2K, 2K + 2) the double sum, 2K + 2 the flag (1 = NaN or +Infinity), 2K + 3 the width min(K, n), then the
// draw: 2K + 4 the crossing id (-1: none), 2K + 5 decided (1) or not (0), 2K + 6 the crossing's adjusted value bits,
// 2K + 7 zero, [2K + 8, 2K + 10) u and [2K + 10, 2K + 12) 1/T as read (the host checks they are its draw's).
// Ids past the width are -1.

#define CAND_K 64
#define CAND_STRIDE (2 * CAND_K + 12)
#define CAND_HEADER 8
// Relative margin (to S) of a decided draw: Sampler.TOP_P_MARGIN and its error argument (terms within 2 ulp, sums of
// up to 256k terms in any order within ~3e-11 relative).
#define CAND_DRAW_MARGIN 1e-9

// An unsigned key whose order is the float order; -0 and +0 get the same key (the host compares them as equal).
__device__ __forceinline__ unsigned cand_key(float v) {
    unsigned b = v == 0.0f ? 0u : __float_as_uint(v);
    return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}

__device__ __forceinline__ float cand_block_max(float v, float *s) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    if (lane == 0) s[warp] = v;
    __syncthreads();
    if (warp == 0) {
        v = lane < nwarps ? s[lane] : -INFINITY;
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
        if (lane == 0) s[0] = v;
    }
    __syncthreads();
    float r = s[0];
    __syncthreads();
    return r;
}

// A fixed reduction tree for a fixed block size: the same row gives the same sum on every run.
__device__ __forceinline__ double cand_block_sum(double v, double *s) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    if (lane == 0) s[warp] = v;
    __syncthreads();
    if (warp == 0) {
        v = lane < nwarps ? s[lane] : 0.0;
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
        if (lane == 0) s[0] = v;
    }
    __syncthreads();
    double r = s[0];
    __syncthreads();
    return r;
}

__device__ __forceinline__ double cand_term(const float *w, int i, double dmx, double inv_t) {
    return exp(__dmul_rn(__dsub_rn((double)w[i], dmx), inv_t));   // no FMA: the host's (v - max) * (1/T), then exp
}

struct CandDraw {
    int id;          // the crossing (-1: none found)
    int decided;     // 1 when the target is farther than the margin from both cumulative sums around it
};

// The draw over the whole row in id order, target u * S. The row is narrowed level by level: the range [lo, hi) is
// cut into one part per warp (a multiple of 32 ids each), each warp sums its part (lane l the ids lo + l, lo + l + 32,
// ... of it, then a butterfly), thread 0 adds the parts in order from the cumulative sum before lo (base) and keeps
// the first part whose cumulative sum exceeds the target; the first level's parts also give S. A range of at most 32
// ids is walked by warp 0 with an inclusive scan (Hillis-Steele). Candidates.computeOnHost repeats exactly these sums
// (with the host's exp); every cumulative sum here is a sum of the terms before its id, whatever the grouping, so
// within n ulp of S of the exact one, as are the host's sequential sums. Block-uniform: every thread calls it.
__device__ CandDraw cand_draw(const float *w, int n, float mx, double u, double inv_t, double *s_part) {
    __shared__ int s_lo, s_hi, s_fail;
    __shared__ double s_base, s_total, s_target;
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, nwarps = blockDim.x >> 5;
    const double dmx = (double)mx;
    int lo = 0, hi = n;
    double base = 0.0, total = -1.0, target = 0.0;   // total < 0: S not known yet
    while (hi - lo > 32) {
        const int part = (((hi - lo + nwarps - 1) / nwarps) + 31) & ~31;
        const int start = lo + warp * part;
        const int end = min(hi, start + part);
        double s = 0.0;
        for (int i = start + lane; i < end; i += 32) s = __dadd_rn(s, cand_term(w, i, dmx, inv_t));
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) s = __dadd_rn(s, __shfl_xor_sync(0xffffffffu, s, o));
        if (lane == 0) s_part[warp] = s;
        __syncthreads();
        if (tid == 0) {
            if (total < 0.0) {
                double c = base;
                for (int k = 0; k < nwarps; k++) c = __dadd_rn(c, s_part[k]);
                total = c;
                target = __dmul_rn(u, total);
            }
            double c = base;
            int found = -1;
            for (int k = 0; k < nwarps; k++) {
                const double next = __dadd_rn(c, s_part[k]);
                if (next > target) {
                    found = k;
                    break;
                }
                c = next;
            }
            s_fail = found < 0;
            s_lo = found < 0 ? lo : lo + found * part;
            s_hi = found < 0 ? hi : min(hi, lo + (found + 1) * part);
            s_base = c;
            s_total = total;
            s_target = target;
        }
        __syncthreads();
        const int fail = s_fail;
        lo = s_lo;
        hi = s_hi;
        base = s_base;
        total = s_total;
        target = s_target;
        __syncthreads();   // every thread has read the shared state before thread 0 writes the next level's
        if (fail) return CandDraw{-1, 0};
    }
    CandDraw r{-1, 0};
    if (warp == 0) {
        const int i = lo + lane;
        double v = i < hi ? cand_term(w, i, dmx, inv_t) : 0.0;
#pragma unroll
        for (int o = 1; o < 32; o <<= 1) {
            const double y = __shfl_up_sync(0xffffffffu, v, o);
            if (lane >= o) v = __dadd_rn(v, y);
        }
        if (total < 0.0) {   // a row of at most 32 ids: S is the whole scan
            total = __dadd_rn(base, __shfl_sync(0xffffffffu, v, 31));
            target = __dmul_rn(u, total);
        }
        const double before = __shfl_up_sync(0xffffffffu, v, 1);
        const double inclusive = __dadd_rn(base, v);
        const double exclusive = lane == 0 ? base : __dadd_rn(base, before);
        const unsigned over = __ballot_sync(0xffffffffu, i < hi && inclusive > target);
        if (over != 0u) {
            const int at = __ffs(over) - 1;
            const double m = __dmul_rn(total, CAND_DRAW_MARGIN);   // _rn: nothing contracted into an FMA
            const int ok = __dsub_rn(target, exclusive) > m && __dsub_rn(inclusive, target) > m;
            r.id = lo + at;
            r.decided = __shfl_sync(0xffffffffu, ok, at);
        }
    }
    return r;
}

// grid: one block per row; block: a multiple of 32 threads, at most 1024.
extern "C" __global__ void sample_candidates(const float *__restrict__ logits, int n, float *work,
                                             const int *__restrict__ adj, int *__restrict__ out) {
    pdl_entry();
    __shared__ unsigned hist[256];
    __shared__ float s_f[32];
    __shared__ double s_d[32];
    __shared__ int s_warp[32];
    __shared__ unsigned s_prefix, s_want;
    __shared__ int s_gt, s_eq;
    __shared__ int c_id[CAND_K];
    __shared__ float c_val[CAND_K];
    const int row = blockIdx.x, tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, nwarps = blockDim.x >> 5;
    const int *hdr = adj + CAND_HEADER * row;
    const float *src = logits + (size_t)hdr[0] * n;
    float *w = work + (size_t)row * n;   // written and read here: not __restrict__/const (no read-only cache)
    int bad = 0;
    for (int i = tid; i < n; i += blockDim.x) {
        float v = src[i];
        bad |= (v != v) | (v == INFINITY);
        w[i] = v;
    }
    __syncthreads();   // the copies are visible to the whole block before the adjustments overwrite some
    const int first = hdr[1], count = hdr[2];
    const float repeat = __int_as_float(hdr[3]);
    const double u = __hiloint2double(hdr[5], hdr[4]), inv_t = __hiloint2double(hdr[7], hdr[6]);
    for (int e = tid; e < count; e += blockDim.x) {
        const int *a = adj + first + 4 * e;
        const int id = a[0], flags = a[1];
        float v = w[id];
        if (flags & 1) v = __fadd_rn(v, __int_as_float(a[2]));
        if (flags & 2) {
            v = v <= 0.0f ? __fmul_rn(v, repeat) : __fdiv_rn(v, repeat);
            v = __fsub_rn(v, __int_as_float(a[3]));
        }
        bad |= (v != v) | (v == INFINITY);
        w[id] = v;
    }
    bad = __syncthreads_or(bad);   // also makes the adjusted values visible to the block

    float mx = -INFINITY;
    for (int i = tid; i < n; i += blockDim.x) mx = fmaxf(mx, w[i]);
    mx = cand_block_max(mx, s_f);
    double sum = 0.0;
    const double dmx = (double)mx;
    for (int i = tid; i < n; i += blockDim.x) sum += exp(__dsub_rn((double)w[i], dmx));
    sum = cand_block_sum(sum, s_d);
    CandDraw drawn{-1, 0};
    if (u >= 0.0 && !bad && mx != -INFINITY) {   // block-uniform; u NaN: no draw asked
        drawn = cand_draw(w, n, mx, u, inv_t, s_d);
    }

    // radix select of the width-th largest key: after the loop, prefix is that key and want the number of tokens
    // with exactly that key that belong to the candidates (the lowest ids of them)
    const int width = n < CAND_K ? n : CAND_K;
    unsigned prefix = 0, mask = 0, want = (unsigned)width;
    for (int shift = 24; shift >= 0; shift -= 8) {
        for (int b = tid; b < 256; b += blockDim.x) hist[b] = 0;
        __syncthreads();
        // one shared atomic per distinct bin of a warp: logits cluster in a few bins (the first pass sees little
        // more than the exponent), and same-address atomics of a warp would serialize
        for (int base = 0; base < n; base += blockDim.x) {
            const int i = base + tid;
            unsigned u = i < n ? cand_key(w[i]) : 0u;
            int bin = i < n && (u & mask) == prefix ? (int)((u >> shift) & 255u) : 256;
            unsigned peers = __match_any_sync(0xffffffffu, bin);
            if (bin < 256 && lane == __ffs(peers) - 1) atomicAdd(&hist[bin], (unsigned)__popc(peers));
        }
        __syncthreads();
        if (tid == 0) {
            unsigned above = 0;
            int b = 255;
            for (; b > 0; b--) {
                if (above + hist[b] >= want) break;
                above += hist[b];
            }
            s_want = want - above;
            s_prefix = prefix | ((unsigned)b << shift);
        }
        __syncthreads();
        want = s_want;
        prefix = s_prefix;
        mask |= 0xffu << shift;
    }

    // collection in id order: keys above the threshold anywhere in [0, width - want), the tied ones by rank of id
    if (tid == 0) {
        s_gt = 0;
        s_eq = 0;
    }
    __syncthreads();
    const int above = width - (int)want;
    for (int base = 0; base < n; base += blockDim.x) {
        const int i = base + tid;
        float v = i < n ? w[i] : 0.0f;
        unsigned u = i < n ? cand_key(v) : 0u;
        bool gt = i < n && u > prefix;
        bool eq = i < n && u == prefix;
        if (gt) {
            int p = atomicAdd(&s_gt, 1);
            if (p < above) {   // always true for consistent keys; guards the array when a NaN row is flagged anyway
                c_id[p] = i;
                c_val[p] = v;
            }
        }
        unsigned ballot = __ballot_sync(0xffffffffu, eq);
        if (lane == 0) s_warp[warp] = __popc(ballot);
        __syncthreads();
        int rank = s_eq + __popc(ballot & ((1u << lane) - 1u));
        for (int k = 0; k < warp; k++) rank += s_warp[k];
        if (eq && rank < (int)want) {
            c_id[above + rank] = i;
            c_val[above + rank] = v;
        }
        __syncthreads();
        if (tid == 0) {
            int total = 0;
            for (int k = 0; k < nwarps; k++) total += s_warp[k];
            s_eq += total;
        }
        __syncthreads();
    }

    int *o = out + (size_t)row * CAND_STRIDE;
    if (tid < CAND_K) {
        if (tid < width) {
            const int id = c_id[tid];
            const float v = c_val[tid];
            const unsigned u = cand_key(v);
            int r = 0;
            for (int j = 0; j < width; j++) {
                const unsigned uj = cand_key(c_val[j]);
                r += (uj > u) || (uj == u && c_id[j] < id);
            }
            o[r] = id;
            o[CAND_K + r] = __float_as_int(v);
        } else {
            o[tid] = -1;
            o[CAND_K + tid] = __float_as_int(-INFINITY);
        }
    }
    if (tid == 0) {
        *reinterpret_cast<double *>(o + 2 * CAND_K) = sum;
        o[2 * CAND_K + 2] = bad ? 1 : 0;
        o[2 * CAND_K + 3] = width;
        o[2 * CAND_K + 4] = drawn.id;
        o[2 * CAND_K + 5] = drawn.decided;
        o[2 * CAND_K + 6] = drawn.id >= 0 ? __float_as_int(w[drawn.id]) : __float_as_int(NAN);
        o[2 * CAND_K + 7] = 0;
        o[2 * CAND_K + 8] = hdr[4];
        o[2 * CAND_K + 9] = hdr[5];
        o[2 * CAND_K + 10] = hdr[6];
        o[2 * CAND_K + 11] = hdr[7];
    }
}
