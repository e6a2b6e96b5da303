package aether.runtime.quant;

import aether.runtime.tensor.GgmlType;
import java.lang.foreign.MemorySegment;
import java.util.Optional;

/**
 * The codec for each {@link GgmlType}. Codecs are stateless singletons; the vectorized ones pick their Vector API or
 * scalar path once, at class initialisation ({@code aether.vector}, see {@link Vectorization}).
 */
public final class BlockCodecs {

    /** Largest float array the JVM reliably allocates (some VMs reserve header words in the last few indices). */
    static final long MAX_ARRAY_ELEMENTS = Integer.MAX_VALUE - 8;

    private static final BlockCodec Q2_K = new Q2_KCodec();
    private static final BlockCodec Q3_K = new Q3_KCodec();
    private static final BlockCodec Q4_K = new Q4_KCodec();
    private static final BlockCodec Q5_K = new Q5_KCodec();
    private static final BlockCodec Q6_K = new Q6_KCodec();
    private static final BlockCodec Q8_K = new Q8_KCodec();
    private static final BlockCodec IQ4_NL = new IQ4_NLCodec();
    private static final BlockCodec IQ4_XS = new IQ4_XSCodec();
    private static final BlockCodec TQ1_0 = new TQ1_0Codec();
    private static final BlockCodec TQ2_0 = new TQ2_0Codec();
    private static final BlockCodec MXFP4 = new MXFP4Codec();
    private static final BlockCodec IQ2_XXS = new IQ2_XXSCodec();
    private static final BlockCodec IQ2_XS = new IQ2_XSCodec();
    private static final BlockCodec IQ2_S = new IQ2_SCodec();
    private static final BlockCodec IQ3_XXS = new IQ3_XXSCodec();
    private static final BlockCodec IQ3_S = new IQ3_SCodec();
    private static final BlockCodec IQ1_S = new IQ1_SCodec();
    private static final BlockCodec IQ1_M = new IQ1_MCodec();

    private static final BlockCodec Q4_K_SCALAR = new Q4_KCodec(false);
    private static final BlockCodec Q5_K_SCALAR = new Q5_KCodec(false);
    private static final BlockCodec Q6_K_SCALAR = new Q6_KCodec(false);

    private BlockCodecs() {}

    /**
     * The codec for {@code type} that never touches the Vector API (the same values as {@link #require}'s). For
     * lukewarm paths that decode a few blocks per call, such as an embedding lookup of one row per token: until C2
     * compiles such a caller, Vector API code runs interpreted or C1-compiled and boxes every vector (kilobytes per
     * block), where scalar code allocates nothing.
     *
     * @throws UnsupportedTypeException if this build cannot read that type
     */
    public static BlockCodec requireScalar(GgmlType type) {
        return switch (type) {
            case BF16 -> BF16Codec.SCALAR;
            case Q4_0 -> Q4_0Codec.SCALAR;
            case Q4_1 -> Q4_1Codec.SCALAR;
            case Q5_0 -> Q5_0Codec.SCALAR;
            case Q5_1 -> Q5_1Codec.SCALAR;
            case Q8_0 -> Q8_0Codec.SCALAR;
            case Q4_K -> Q4_K_SCALAR;
            case Q5_K -> Q5_K_SCALAR;
            case Q6_K -> Q6_K_SCALAR;
            default -> require(type);
        };
    }

    /** The codec for {@code type}, or empty if this build cannot read that type. */
    public static Optional<BlockCodec> find(GgmlType type) {
        return Optional.ofNullable(codecOrNull(type));
    }

    /**
     * The codec for {@code type}.
     *
     * @throws UnsupportedTypeException if this build cannot read that type
     */
    public static BlockCodec require(GgmlType type) {
        BlockCodec codec = codecOrNull(type);
        if (codec == null) {
            throw new UnsupportedTypeException(type);
        }
        return codec;
    }

    /**
     * Dequantizes {@code count} elements of {@code type} at byte {@code offset} of {@code src} into a new array. For
     * loading and tests, not hot paths (it allocates).
     *
     * @throws UnsupportedTypeException  if this build cannot read {@code type}
     * @throws IllegalArgumentException  if {@code count} is negative, not whole blocks, or too large for one array
     * @throws IndexOutOfBoundsException if the bytes run past the end of {@code src}
     */
    public static float[] dequantize(GgmlType type, MemorySegment src, long offset, long count) {
        BlockCodec codec = require(type);
        if (count < 0 || count > MAX_ARRAY_ELEMENTS) {
            throw new IllegalArgumentException("%s: element count %,d is out of range (expected: 0..%,d)"
                    .formatted(type, count, MAX_ARRAY_ELEMENTS));
        }
        long bytes = type.bytesFor(count);
        if (offset < 0 || offset > src.byteSize() || bytes > src.byteSize() - offset) {
            throw new IndexOutOfBoundsException("%s: %,d elements need %,d bytes at offset %,d, segment has %,d bytes"
                    .formatted(type, count, bytes, offset, src.byteSize()));
        }
        float[] out = new float[(int) count];
        codec.dequantize(src, offset, out, 0, (int) count);
        return out;
    }

    private static BlockCodec codecOrNull(GgmlType type) {
        // No default: a type added to GgmlType must be listed here (compile error otherwise).
        return switch (type) {
            case F32 -> F32Codec.INSTANCE;
            case F16 -> F16Codec.INSTANCE;
            case BF16 -> BF16Codec.INSTANCE;
            case F64 -> F64Codec.INSTANCE;
            case I8 -> I8Codec.INSTANCE;
            case I16 -> I16Codec.INSTANCE;
            case I32 -> I32Codec.INSTANCE;
            case I64 -> I64Codec.INSTANCE;
            case Q4_0 -> Q4_0Codec.INSTANCE;
            case Q4_1 -> Q4_1Codec.INSTANCE;
            case Q5_0 -> Q5_0Codec.INSTANCE;
            case Q5_1 -> Q5_1Codec.INSTANCE;
            case Q8_0 -> Q8_0Codec.INSTANCE;
            case Q8_1 -> Q8_1Codec.INSTANCE;
            case Q2_K -> Q2_K;
            case Q3_K -> Q3_K;
            case Q4_K -> Q4_K;
            case Q5_K -> Q5_K;
            case Q6_K -> Q6_K;
            case Q8_K -> Q8_K;
            case IQ4_NL -> IQ4_NL;
            case IQ4_XS -> IQ4_XS;
            case TQ1_0 -> TQ1_0;
            case TQ2_0 -> TQ2_0;
            case MXFP4 -> MXFP4;
            case IQ2_XXS -> IQ2_XXS;
            case IQ2_XS -> IQ2_XS;
            case IQ2_S -> IQ2_S;
            case IQ3_XXS -> IQ3_XXS;
            case IQ3_S -> IQ3_S;
            case IQ1_S -> IQ1_S;
            case IQ1_M -> IQ1_M;
        };
    }
}
