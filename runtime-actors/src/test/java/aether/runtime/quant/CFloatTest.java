package aether.runtime.quant;

import static org.assertj.core.api.Assertions.assertThat;

import java.math.BigDecimal;
import java.math.RoundingMode;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class CFloatTest {

    @Test
    void shouldRoundHalfwayCasesAwayFromZeroLikeCRoundf() {
        assertThat(CFloat.roundf(0.5f)).isEqualTo(1.0f);
        assertThat(CFloat.roundf(-0.5f)).isEqualTo(-1.0f);
        assertThat(CFloat.roundf(2.5f)).isEqualTo(3.0f);
        assertThat(CFloat.roundf(-2.5f)).isEqualTo(-3.0f);   // Math.round gives -2
        assertThat(CFloat.roundf(-126.5f)).isEqualTo(-127.0f);
        assertThat(CFloat.roundf(0.49999997f)).isEqualTo(0.0f);   // float x + 0.5f would round to 1
        assertThat(CFloat.roundf(-0.49999997f)).isEqualTo(-0.0f);
        assertThat(Float.floatToRawIntBits(CFloat.roundf(-0.3f))).isEqualTo(Float.floatToRawIntBits(-0.0f));
        assertThat(CFloat.roundf(8388609.0f)).isEqualTo(8388609.0f);
        assertThat(CFloat.roundf(Float.MAX_VALUE)).isEqualTo(Float.MAX_VALUE);
        assertThat(CFloat.roundf(Float.NEGATIVE_INFINITY)).isEqualTo(Float.NEGATIVE_INFINITY);
        assertThat(CFloat.roundf(Float.NaN)).isNaN();
    }

    @Test
    void shouldAgreeWithDecimalHalfUpRoundingOnRandomFloats() {
        SplittableRandom random = new SplittableRandom(42);
        for (int i = 0; i < 200_000; i++) {
            float x = i % 2 == 0
                    ? Float.intBitsToFloat(random.nextInt()) // every exponent
                    : (random.nextInt(-600, 600) + (random.nextBoolean() ? 0.5f : (float) random.nextDouble()));
            if (!Float.isFinite(x)) {
                continue;
            }
            // BigDecimal HALF_UP is "half away from zero": an independent definition of roundf
            float expected = new BigDecimal(x).setScale(0, RoundingMode.HALF_UP).floatValue();
            float actual = CFloat.roundf(x);
            assertThat(actual).as("roundf(%s)", x).isEqualTo(expected == 0 ? Math.copySign(0.0f, x) : expected);
        }
    }

    @Test
    void shouldRoundToNearestEvenLikeGgmlNearestInt() {
        assertThat(CFloat.nearestInt(2.5f)).isEqualTo(2);
        assertThat(CFloat.nearestInt(3.5f)).isEqualTo(4);
        assertThat(CFloat.nearestInt(-2.5f)).isEqualTo(-2);
        assertThat(CFloat.nearestInt(-0.4f)).isEqualTo(0);
        assertThat(CFloat.nearestInt(4194303f)).isEqualTo(4194303);
        assertThat(CFloat.nearestInt(-4194303f)).isEqualTo(-4194303);
        SplittableRandom random = new SplittableRandom(7);
        for (int i = 0; i < 200_000; i++) {
            float x = (float) ((random.nextDouble() * 2 - 1) * Math.pow(2, random.nextInt(-10, 23)));
            assertThat(CFloat.nearestInt(x)).as("nearest_int(%s)", x).isEqualTo((int) Math.rint(x));
        }
    }

    @Test
    void shouldConvertToBf16LikeGgml() {
        assertThat(CFloat.floatToBf16(1.0f)).isEqualTo((short) 0x3f80);
        assertThat(CFloat.floatToBf16(Float.intBitsToFloat(0x3f808000))).isEqualTo((short) 0x3f80);   // tie to even
        assertThat(CFloat.floatToBf16(Float.intBitsToFloat(0x3f818000))).isEqualTo((short) 0x3f82);   // tie to even
        assertThat(CFloat.floatToBf16(Float.intBitsToFloat(0x3f808001))).isEqualTo((short) 0x3f81);
        assertThat(CFloat.floatToBf16(Float.MAX_VALUE)).isEqualTo((short) 0x7f80);   // overflows to +inf
        assertThat(CFloat.floatToBf16(Float.NEGATIVE_INFINITY)).isEqualTo((short) 0xff80);
        assertThat(CFloat.floatToBf16(Float.MIN_VALUE)).isEqualTo((short) 0x0000);   // subnormals kept, not flushed
        assertThat(CFloat.floatToBf16(Float.intBitsToFloat(0x00018000))).isEqualTo((short) 0x0002);
        assertThat(CFloat.floatToBf16(Float.intBitsToFloat(0x7f800001))).isEqualTo((short) 0x7fc0);   // sNaN quieted
        assertThat(CFloat.floatToBf16(Float.intBitsToFloat(0xffa50000))).isEqualTo((short) 0xffe5);
        SplittableRandom random = new SplittableRandom(3);
        for (int i = 0; i < 200_000; i++) {
            float x = Float.intBitsToFloat(random.nextInt());
            if (Float.isNaN(x)) {
                continue;
            }
            float y = CFloat.bf16ToFloat(CFloat.floatToBf16(x));
            // nearest: no bf16 neighbour is closer (checked in double, exact for these magnitudes)
            int bits = Float.floatToRawIntBits(y);
            if (Float.isFinite(y)) {
                double err = Math.abs((double) x - y);
                double up = Math.abs((double) x - Float.intBitsToFloat(bits + 0x10000));
                double down = Math.abs((double) x - Float.intBitsToFloat(bits - 0x10000));
                assertThat(err).as("bf16(%s)=%s", x, y).isLessThanOrEqualTo(Double.isNaN(up) ? err : up);
                assertThat(err).as("bf16(%s)=%s", x, y).isLessThanOrEqualTo(Double.isNaN(down) ? err : down);
                if (err == up || err == down) {
                    assertThat(bits & 0x10000).as("tie to even for %s", x).isZero();
                }
            }
        }
    }
}
