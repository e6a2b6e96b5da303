package aether.llm.synth;

import java.util.SplittableRandom;

/**
 * Deterministic random weights, generated in independent chunks so that several threads can fill one tensor and
 * the file is still byte-identical for a given seed: chunk {@code c} of tensor {@code t} always draws from the
 * stream seeded by {@code (seed, t, c)}, whichever thread runs it.
 */
final class RandomRows {

    private RandomRows() {}

    /** Fills {@code out[0..count)} with N(mean, std²) samples from the stream of (seed, tensor, chunk). */
    static void gaussian(long seed, int tensor, long chunk, float mean, float std, float[] out, int count) {
        SplittableRandom random = new SplittableRandom(mix(seed, tensor, chunk));
        for (int i = 0; i < count; i++) {
            out[i] = mean + std * (float) random.nextGaussian();
        }
    }

    /** SplitMix64-style finalizer over the three coordinates: nearby inputs give unrelated streams. */
    static long mix(long seed, int tensor, long chunk) {
        long z = seed * 0x9E3779B97F4A7C15L + tensor * 0xBF58476D1CE4E5B9L + chunk * 0x94D049BB133111EBL;
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }
}
