package aether.device.cpu.kernel;

import java.lang.foreign.MemorySegment;

/**
 * Scratch for activation rows quantized to Q8_K ({@link Q8Activations#quantizeRowQ8K}): token t's quants at
 * {@code aq[t·256·blocks]}, its scales at {@code dk[t·blocks]} and its 32-element sums at {@code bs[t·8·blocks]}.
 * Grows on demand and is then reused, so a warm decode step allocates nothing. Not thread-safe: one per {@link Matmul}.
 */
final class Q8KRows {
    /** Quants in element order (Q5_K, Q6_K and the scalar references read these). */
    short[] aq = new short[0];
    /** The quants again, per 32-element sub-block its 16 even elements then its 16 odd ones (the Q4_K kernel's order). */
    short[] aqEo = new short[0];
    /**
     * The quants again for the 512-bit Q4_K kernel: per 64 elements g (sub-blocks 2g, 2g+1) and group pair
     * p = g / 2, slot j of 32 at {@code 128p + 32j} holds group 2p's 16 then group 2p+1's 16 of: j = 0 the even
     * elements of the pair's first sub-block, 1 its odd ones, 2 and 3 those of the second sub-block.
     */
    short[] aqWide = new short[0];
    float[] dk = new float[0];
    int[] bs = new int[0];
    /** Super-blocks per row of the current call. */
    int blocks;

    /** Sizes the arrays for {@code tokens} rows of {@code cols} (a multiple of 256) elements. */
    void reserve(int cols, int tokens) {
        blocks = cols / Q8Activations.K_BLOCK;
        int n = blocks * tokens;
        if (dk.length < n) {
            aq = new short[n * Q8Activations.K_BLOCK];
            aqEo = new short[n * Q8Activations.K_BLOCK];
            aqWide = new short[n * Q8Activations.K_BLOCK];
            dk = new float[n];
            bs = new int[n * 8];
        }
    }

    /** Quantizes row {@code t} from the f32 activations at {@code x[xOffset]}. */
    void quantize(int t, MemorySegment x, long xOffset) {
        Q8Activations.quantizeRowQ8K(x, xOffset, blocks * Q8Activations.K_BLOCK, aq, t * blocks * Q8Activations.K_BLOCK,
                dk, t * blocks, bs, t * blocks * 8);
        int base = t * blocks * Q8Activations.K_BLOCK;
        for (int s = base; s < base + blocks * Q8Activations.K_BLOCK; s += 32) {
            for (int k = 0; k < 16; k++) {
                aqEo[s + k] = aq[s + 2 * k];
                aqEo[s + 16 + k] = aq[s + 2 * k + 1];
            }
        }
        for (int g = base; g < base + blocks * Q8Activations.K_BLOCK; g += 64) {
            int pair = g - ((g - base) & 127);           // start of the 128 elements of groups 2p, 2p+1
            int half = ((g - base) & 64) >> 2;           // 0 for group 2p, 16 for group 2p+1
            for (int k = 0; k < 16; k++) {
                aqWide[pair + half + k] = aq[g + 2 * k];
                aqWide[pair + 32 + half + k] = aq[g + 2 * k + 1];
                aqWide[pair + 64 + half + k] = aq[g + 32 + 2 * k];
                aqWide[pair + 96 + half + k] = aq[g + 32 + 2 * k + 1];
            }
        }
    }
}
