package aether.llm.engine.cuda;

import java.util.function.UnaryOperator;

/**
 * Which small kernels of a single-token decode step run inside the GEMV launch before them ({@code
 * fused_decode.cuh}) instead of as launches of their own: on an H100 every kernel boundary of the decode graph costs a
 * few µs of ramp-up and tail even with programmatic dependent launch, and a Llama-8B step had ~10 per layer. The fused
 * and unfused steps compute the same values (the same device functions; the tests compare them bit for bit).
 *
 * <p>Off by default: written on 2026-12-07 (fourth session) and not yet run on a GPU (the session's device time went
 * to machines that would not start), so neither their results nor their speed has been seen; the separate kernels are
 * the path verified on the H100. {@code -Daether.cuda.fuseNorm=true} (and {@code fuseSwiglu}, {@code fuseRope}) turn
 * them on; {@code scripts/gpu-check.sh} A/Bs every setting in one run ({@code DecodeFusionBench}) and its GPU tests
 * compare them with the separate kernels. Turn the winners on by default once that has run.
 *
 * @param norm   RMSNorm + q8_1 of the residual stream in the wo and down GEMVs (their residual add's epilogue): the
 *               ffn norm, the next layer's attention norm, the output norm ({@code -Daether.cuda.fuseNorm=true})
 * @param swiglu SwiGLU + q8_1 in the gate|up GEMV ({@code -Daether.cuda.fuseSwiglu=true})
 * @param rope   RoPE and the KV-cache store in the q|k|v GEMV ({@code -Daether.cuda.fuseRope=true})
 * @param swigluRows with {@code swiglu}: where the gate|up matrix is Q4_0 (one warp a row), one block computes a q8_1
 *               group's 32 gate and 32 up rows and finishes them itself, without arrival counters ({@code
 *               -Daether.cuda.swigluRows=true}; off by default until measured)
 */
public record DecodeFusions(boolean norm, boolean swiglu, boolean rope, boolean swigluRows) {

    public static final DecodeFusions ALL = new DecodeFusions(true, true, true, false);
    public static final DecodeFusions NONE = new DecodeFusions(false, false, false, false);

    /** The three fusions as given, SwiGLU through arrival counters. */
    public DecodeFusions(boolean norm, boolean swiglu, boolean rope) {
        this(norm, swiglu, rope, false);
    }

    /**
     * The switches of this JVM ({@code -Daether.cuda.fuseNorm}, {@code fuseSwiglu}, {@code fuseRope}, {@code
     * swigluRows}: default off, see the class comment).
     */
    public static DecodeFusions fromSystemProperties() {
        return parse(System::getProperty);
    }

    /**
     * The switches as {@code properties} gives them (null: unset, off).
     *
     * @throws IllegalArgumentException for a value other than true or false, naming the property
     */
    static DecodeFusions parse(UnaryOperator<String> properties) {
        return new DecodeFusions(flag(properties, "aether.cuda.fuseNorm", false),
                flag(properties, "aether.cuda.fuseSwiglu", false), flag(properties, "aether.cuda.fuseRope", false),
                flag(properties, "aether.cuda.swigluRows", false));
    }

    private static boolean flag(UnaryOperator<String> properties, String name, boolean unset) {
        String v = properties.apply(name);
        if (v == null) {
            return unset;
        }
        return switch (v.strip().toLowerCase(java.util.Locale.ROOT)) {
            case "true" -> true;
            case "false" -> false;
            default -> throw new IllegalArgumentException("-D" + name + "=" + v + " (expected true or false)");
        };
    }

    /** E.g. "norm, swiglu, rope" or "none", for reports. */
    public String describe() {
        StringBuilder s = new StringBuilder();
        if (norm) {
            s.append("norm");
        }
        if (swiglu) {
            s.append(s.isEmpty() ? "" : ", ").append(swigluRows ? "swiglu (by rows)" : "swiglu");
        }
        if (rope) {
            s.append(s.isEmpty() ? "" : ", ").append("rope");
        }
        return s.isEmpty() ? "none" : s.toString();
    }
}
