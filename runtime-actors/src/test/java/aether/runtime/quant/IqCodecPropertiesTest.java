package aether.runtime.quant;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import aether.runtime.tensor.GgmlType;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.constraints.IntRange;

/** Robustness over arbitrary block bytes, argument checking, and quantizer round trips. */
class IqCodecPropertiesTest {

    @Provide
    Arbitrary<BlockCodec> codecs() {
        return Arbitraries.of(IqCodecs.ALL);
    }

    @Property(tries = 600)
    void decodingAnyBytesNeverThrowsAndStaysFiniteWhenTheScaleIs(@ForAll("codecs") BlockCodec codec,
            @ForAll @IntRange(min = 1, max = 3) int blocks, @ForAll long seed) {
        GgmlType type = codec.type();
        byte[] bytes = new byte[blocks * type.blockBytes()];
        new java.util.Random(seed).nextBytes(bytes);
        int n = blocks * type.blockSize();
        float[] out = new float[n + 2];
        out[0] = 7f;
        out[n + 1] = 7f;
        codec.dequantize(MemorySegment.ofArray(bytes), 0, out, 1, n);
        assertThat(out[0]).isEqualTo(7f);
        assertThat(out[n + 1]).isEqualTo(7f);
        for (int b = 0; b < blocks; b++) {
            boolean scaleFinite = scaleFinite(type, ByteBuffer.wrap(bytes, b * type.blockBytes(), type.blockBytes())
                    .slice().order(ByteOrder.LITTLE_ENDIAN));
            for (int i = 0; i < type.blockSize(); i++) {
                float v = out[1 + b * type.blockSize() + i];
                if (scaleFinite) {
                    assertThat(Float.isFinite(v)).as("%s block %d element %d = %s", type, b, i, v).isTrue();
                }
            }
        }
    }

    /** Whether the block's scale is finite and small enough that no element can overflow float. */
    private static boolean scaleFinite(GgmlType type, ByteBuffer block) {
        return switch (type) {
            case TQ1_0 -> Float.isFinite(Float.float16ToFloat(block.getShort(52)));
            case TQ2_0 -> Float.isFinite(Float.float16ToFloat(block.getShort(64)));
            case MXFP4 -> (block.get(0) & 0xFF) <= 252;
            case IQ1_M -> {
                int d = 0;
                for (int w = 0; w < 4; w++) {
                    d |= ((block.getShort(48 + 2 * w) & 0xFFFF) >> 12) << 4 * w;
                }
                yield Float.isFinite(Float.float16ToFloat((short) d));
            }
            default -> Float.isFinite(Float.float16ToFloat(block.getShort(0)));
        };
    }

    @Property(tries = 200)
    void quantizingTernaryDataIsLosslessUpToTheHalfScale(@ForAll @IntRange(min = 0, max = 1) int which,
            @ForAll long seed) {
        BlockCodec codec = which == 0 ? new TQ1_0Codec() : new TQ2_0Codec();
        java.util.Random rnd = new java.util.Random(seed);
        float a = (float) Math.scalb(1 + rnd.nextDouble(), rnd.nextInt(-10, 10));
        float[] x = new float[512];
        for (int i = 0; i < x.length; i++) {
            x[i] = (rnd.nextInt(3) - 1) * a;
        }
        x[3] = a; // the scale is max |x|
        byte[] q = new byte[(int) codec.type().bytesFor(x.length)];
        codec.quantize(x, 0, x.length, MemorySegment.ofArray(q), 0);
        float[] y = new float[x.length];
        codec.dequantize(MemorySegment.ofArray(q), 0, y, 0, y.length);
        float half = Float.float16ToFloat(Float.floatToFloat16(a));
        for (int i = 0; i < x.length; i++) {
            assertThat(y[i]).as("element %d", i).isEqualTo(Math.signum(x[i]) * half);
        }
    }

    @Property(tries = 100)
    void iq4QuantizersFitGaussianRowsWithinTheirResolution(@ForAll @IntRange(min = 0, max = 1) int which,
            @ForAll long seed) {
        BlockCodec codec = which == 0 ? new IQ4_NLCodec() : new IQ4_XSCodec();
        java.util.Random rnd = new java.util.Random(seed);
        float[] x = new float[512];
        // sigma >= 2^-3 keeps IQ4_XS's f16 super-scale (about sigma / 1200) out of the f16 subnormal range,
        // where its precision, not the quantizer, would bound the error
        double sigma = Math.scalb(1.0, rnd.nextInt(-3, 12));
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) (rnd.nextGaussian() * sigma);
        }
        byte[] q = new byte[(int) codec.type().bytesFor(x.length)];
        codec.quantize(x, 0, x.length, MemorySegment.ofArray(q), 0);
        float[] y = new float[x.length];
        codec.dequantize(MemorySegment.ofArray(q), 0, y, 0, y.length);
        // 16 non-linear levels over about ±3 sigma: the RMS error of a 4-bit quantizer on Gaussian data is ~0.1 sigma
        assertThat(IqQuantizeTest.rmse(x, y)).isLessThan(0.15 * sigma);
    }

    @Property(tries = 50)
    void rejectsCountsThatAreNotWholeBlocks(@ForAll("codecs") BlockCodec codec,
            @ForAll @IntRange(min = 1, max = 255) int remainder) {
        int bs = codec.type().blockSize();
        int count = bs + remainder % bs;
        if (count % bs == 0) {
            count++;
        }
        int bad = count;
        byte[] bytes = new byte[4 * codec.type().blockBytes()];
        assertThatThrownBy(() -> codec.dequantize(MemorySegment.ofArray(bytes), 0, new float[4 * bs], 0, bad))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining(codec.type().name())
                .hasMessageContaining(String.valueOf(bad));
    }

    @Property(tries = 30)
    void neverReadsPastTheSegment(@ForAll("codecs") BlockCodec codec) {
        byte[] bytes = new byte[codec.type().blockBytes() * 2 - 1];
        float[] out = new float[2 * codec.type().blockSize()];
        Arrays.fill(out, 3f);
        assertThatThrownBy(() -> codec.dequantize(MemorySegment.ofArray(bytes), 0, out, 0, out.length))
                .isInstanceOf(IndexOutOfBoundsException.class);
    }

    @Property(tries = 12)
    void quantizeIsRejectedWhereUnsupported(@ForAll("codecs") BlockCodec codec) {
        if (codec.canQuantize()) {
            return;
        }
        assertThatThrownBy(() -> codec.quantize(new float[256], 0, 256, MemorySegment.ofArray(new byte[4096]), 0))
                .isInstanceOf(UnsupportedOperationException.class).hasMessageContaining(codec.type().name());
    }
}
