package aether.device.cpu.kernel;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorShuffle;

/**
 * Shuffles for summing a float vector's lanes in a fixed order: the kernels end a dot product with
 * <pre>{@code
 * acc = acc.add(acc.rearrange(LaneSums.HALVES));
 * acc = acc.add(acc.rearrange(LaneSums.QUARTERS));
 * float sum = acc.add(acc.rearrange(LaneSums.PAIRS)).lane(0);   // ((l0+l4)+(l2+l6)) + ((l1+l5)+(l3+l7))
 * }</pre>
 * and the 512-bit kernels start with {@link #HALVES_512} and go on with the {@code _512} shuffles, instead of {@code
 * reduceLanes(ADD)}. That reduction leaves its order open, and the JDK uses that freedom: its Java fallback (what the
 * interpreter and C1 run) adds lane after lane, C2's intrinsic adds as a tree. So the same input gave results one ulp
 * apart depending on which JIT tier ran the kernel at that moment, and a seed did not always repeat a generation
 * (through an f16 KV cache one ulp can become ~1e-4 in the logits). Additions and permutations are exact lane by lane
 * in both, so this order is the same in every tier; {@code TierIndependentLogitsTest} checks the logits bit for bit.
 *
 * <p>The tree is written out at each kernel's end rather than in a helper method, because a vector passed to a method
 * that C2 does not inline is boxed ({@code VectorValuesStayInMethodsTest}).
 */
public final class LaneSums {

    /** Lane i with lane i ^ 4 of 8 (256-bit). */
    public static final VectorShuffle<Float> HALVES = VectorShuffle.fromOp(FloatVector.SPECIES_256, i -> i ^ 4);
    /** Lane i with lane i ^ 2 of 8. */
    public static final VectorShuffle<Float> QUARTERS = VectorShuffle.fromOp(FloatVector.SPECIES_256, i -> i ^ 2);
    /** Lane i with lane i ^ 1 of 8. */
    public static final VectorShuffle<Float> PAIRS = VectorShuffle.fromOp(FloatVector.SPECIES_256, i -> i ^ 1);

    /** Lane i with lane i ^ 8 of 16 (512-bit). */
    public static final VectorShuffle<Float> HALVES_512 = VectorShuffle.fromOp(FloatVector.SPECIES_512, i -> i ^ 8);
    /** Lane i with lane i ^ 4 of 16. */
    public static final VectorShuffle<Float> QUARTERS_512 = VectorShuffle.fromOp(FloatVector.SPECIES_512, i -> i ^ 4);
    /** Lane i with lane i ^ 2 of 16. */
    public static final VectorShuffle<Float> EIGHTHS_512 = VectorShuffle.fromOp(FloatVector.SPECIES_512, i -> i ^ 2);
    /** Lane i with lane i ^ 1 of 16. */
    public static final VectorShuffle<Float> PAIRS_512 = VectorShuffle.fromOp(FloatVector.SPECIES_512, i -> i ^ 1);

    private LaneSums() {}
}
