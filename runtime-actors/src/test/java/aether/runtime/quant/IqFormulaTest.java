package aether.runtime.quant;

import static org.assertj.core.api.Assertions.assertThat;

import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * Blocks built field by field from known values, decoded and compared with the format's formula evaluated here in
 * double (written from ggml-common.h's layout description, not from the codecs). The loops cover every scale value,
 * every code, every index high bit and every sign / shift branch of each format.
 */
class IqFormulaTest {

    private static final int[] IQ4NL = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};
    private static final double[] E2M1 = {0, 0.5, 1, 1.5, 2, 3, 4, 6, 0, -0.5, -1, -1.5, -2, -3, -4, -6};

    private final Random rnd = new Random(1234);

    @Test
    void iq4nlDecodesEveryNibbleInBothHalves() {
        for (float d : new float[] {0.0123f, -2.5f, 0f}) {
            ByteBuffer b = block(18);
            b.putShort(0, Float.floatToFloat16(d));
            for (int j = 0; j < 16; j++) {
                b.put(2 + j, (byte) (j | (15 - j) << 4));
            }
            float[] y = decode(new IQ4_NLCodec(), b, 32);
            double dd = Float.float16ToFloat(Float.floatToFloat16(d));
            for (int j = 0; j < 16; j++) {
                assertClose(y[j], dd * IQ4NL[j], "element " + j);
                assertClose(y[j + 16], dd * IQ4NL[15 - j], "element " + (j + 16));
            }
        }
    }

    @Test
    void iq4xsDecodesAllSixtyFourSubBlockScales() {
        for (int first = 0; first < 64; first += 8) {
            ByteBuffer b = block(136);
            double d = half(b, 0, 0.75f);
            int[] ls = new int[8];
            int scalesH = 0;
            for (int ib = 0; ib < 8; ib++) {
                ls[ib] = first + ib;
                b.put(4 + ib / 2, (byte) (b.get(4 + ib / 2) | (ls[ib] & 15) << 4 * (ib % 2)));
                scalesH |= (ls[ib] >> 4) << 2 * ib;
            }
            b.putShort(2, (short) scalesH);
            int[] codes = new int[256];
            for (int ib = 0; ib < 8; ib++) {
                for (int j = 0; j < 16; j++) {
                    int lo = rnd.nextInt(16);
                    int hi = rnd.nextInt(16);
                    codes[32 * ib + j] = lo;
                    codes[32 * ib + 16 + j] = hi;
                    b.put(8 + 16 * ib + j, (byte) (lo | hi << 4));
                }
            }
            float[] y = decode(new IQ4_XSCodec(), b, 256);
            for (int i = 0; i < 256; i++) {
                assertClose(y[i], d * (ls[i / 32] - 32) * IQ4NL[codes[i]], "element " + i);
            }
        }
    }

    @Test
    void tq2DecodesEachTwoBitCodeAsCodeMinusOneTimesScale() {
        ByteBuffer b = block(66);
        double d = half(b, 64, 1.5f);
        int[] codes = new int[256];
        for (int e = 0; e < 256; e++) {
            codes[e] = e % 4 == 0 ? 3 : rnd.nextInt(4);
            int h = e / 128;
            int l = (e % 128) / 32;
            int m = e % 32;
            b.put(32 * h + m, (byte) (b.get(32 * h + m) | codes[e] << 2 * l));
        }
        float[] y = decode(new TQ2_0Codec(), b, 256);
        for (int e = 0; e < 256; e++) {
            assertClose(y[e], (codes[e] - 1) * d, "element " + e);
        }
    }

    @Test
    void tq1DecodesTritsPackedAsFixedPointFractions() {
        for (int round = 0; round < 4; round++) {
            ByteBuffer b = block(54);
            double d = half(b, 52, round == 0 ? -0.3f : 0.3f * round);
            int[] trits = new int[256];
            for (int e = 0; e < 256; e++) {
                trits[e] = round == 1 ? 2 : round == 2 ? 0 : rnd.nextInt(3);
            }
            for (int m = 0; m < 32; m++) {
                b.put(m, packTrits(trits, m, 32, 5));
            }
            for (int m = 0; m < 16; m++) {
                b.put(32 + m, packTrits(trits, 160 + m, 16, 5));
            }
            for (int j = 0; j < 4; j++) {
                b.put(48 + j, packTrits(trits, 240 + j, 4, 4));
            }
            float[] y = decode(new TQ1_0Codec(), b, 256);
            for (int e = 0; e < 256; e++) {
                assertClose(y[e], (trits[e] - 1) * d, "round " + round + " element " + e);
            }
        }
    }

    /** n trits, first most significant, as the 5-trit fraction value * 256 / 243 rounded up. */
    private static byte packTrits(int[] trits, int first, int stride, int n) {
        int v = 0;
        for (int k = 0; k < 5; k++) {
            v = v * 3 + (k < n ? trits[first + k * stride] : 0);
        }
        return (byte) Math.ceilDiv(v * 256, 243);
    }

    @Test
    void mxfp4DecodesEveryCodeAtExtremeAndOrdinaryExponents() {
        for (int e : new int[] {0, 1, 2, 100, 127, 128, 200, 254, 255}) {
            ByteBuffer b = block(17);
            b.put(0, (byte) e);
            for (int j = 0; j < 16; j++) {
                b.put(1 + j, (byte) (j | (15 - j) << 4));
            }
            float[] y = decode(new MXFP4Codec(), b, 32);
            for (int j = 0; j < 16; j++) {
                assertClose(y[j], Math.scalb(E2M1[j], e - 127), "e " + e + " element " + j);
                assertClose(y[j + 16], Math.scalb(E2M1[15 - j], e - 127), "e " + e + " element " + (j + 16));
                assertThat(Float.isFinite(y[j])).as("e %d code %d finite", e, j).isEqualTo(Math.abs(Math.scalb(E2M1[j], e - 127)) <= Float.MAX_VALUE);
            }
        }
    }

    @Test
    void iq2xxsCombinesGridSignsAndAllSixteenScales() {
        for (int round = 0; round < 4; round++) {
            ByteBuffer b = block(66);
            double d = half(b, 0, 0.01f + round);
            double[] expected = new double[256];
            for (int ib = 0; ib < 8; ib++) {
                int s = (8 * round + 2 * ib) % 16 + (ib % 2);
                int aux1 = s << 28;
                int[] idx = new int[4];
                int[] sign7 = new int[4];
                for (int l = 0; l < 4; l++) {
                    idx[l] = rnd.nextInt(256);
                    sign7[l] = l == 0 ? 127 : rnd.nextInt(128);
                    b.put(2 + 8 * ib + l, (byte) idx[l]);
                    aux1 |= sign7[l] << 7 * l;
                }
                b.putInt(2 + 8 * ib + 4, aux1);
                for (int l = 0; l < 4; l++) {
                    int signs = withParity(sign7[l]);
                    for (int j = 0; j < 8; j++) {
                        expected[32 * ib + 8 * l + j] = d * (0.5 + s) * 0.25 * u(IqGrids.IQ2XXS, 8 * idx[l] + j)
                                * ((signs >> j & 1) != 0 ? -1 : 1);
                    }
                }
            }
            assertDecodes(new IQ2_XXSCodec(), b, expected);
        }
    }

    @Test
    void iq2xsUsesNineBitIndicesAndTwoScalesPerThirtyTwo() {
        for (int round = 0; round < 2; round++) {
            ByteBuffer b = block(74);
            double d = half(b, 0, -0.02f);
            double[] expected = new double[256];
            for (int ib = 0; ib < 8; ib++) {
                int s0 = 8 * round + ib;
                int s1 = 15 - s0;
                b.put(66 + ib, (byte) (s0 | s1 << 4));
                for (int l = 0; l < 4; l++) {
                    int idx = l == 0 ? 256 + rnd.nextInt(256) : rnd.nextInt(512);
                    int sign7 = rnd.nextInt(128);
                    b.putShort(2 + 2 * (4 * ib + l), (short) (idx | sign7 << 9));
                    int signs = withParity(sign7);
                    double db = d * (0.5 + (l < 2 ? s0 : s1)) * 0.25;
                    for (int j = 0; j < 8; j++) {
                        expected[32 * ib + 8 * l + j] = db * u(IqGrids.IQ2XS, 8 * idx + j) * ((signs >> j & 1) != 0 ? -1 : 1);
                    }
                }
            }
            assertDecodes(new IQ2_XSCodec(), b, expected);
        }
    }

    @Test
    void iq2sTakesIndexHighBitsFromQhAndExplicitSigns() {
        for (int round = 0; round < 2; round++) {
            ByteBuffer b = block(82);
            double d = half(b, 0, 0.05f);
            double[] expected = new double[256];
            for (int ib = 0; ib < 8; ib++) {
                int s0 = 8 * round + ib;
                int s1 = (s0 + 5) % 16;
                b.put(74 + ib, (byte) (s0 | s1 << 4));
                int qh = 0;
                for (int l = 0; l < 4; l++) {
                    int idx = ((l + ib) % 4) << 8 | rnd.nextInt(256);
                    int signs = rnd.nextInt(256);
                    b.put(2 + 4 * ib + l, (byte) idx);
                    b.put(34 + 4 * ib + l, (byte) signs);
                    qh |= (idx >> 8) << 2 * l;
                    double db = d * (0.5 + (l < 2 ? s0 : s1)) * 0.25;
                    for (int j = 0; j < 8; j++) {
                        expected[32 * ib + 8 * l + j] = db * u(IqGrids.IQ2S, 8 * idx + j) * ((signs >> j & 1) != 0 ? -1 : 1);
                    }
                }
                b.put(66 + ib, (byte) qh);
            }
            assertDecodes(new IQ2_SCodec(), b, expected);
        }
    }

    @Test
    void iq3xxsPairsTwoFourValueEntriesUnderOneSignIndex() {
        for (int round = 0; round < 2; round++) {
            ByteBuffer b = block(98);
            double d = half(b, 0, 0.125f);
            double[] expected = new double[256];
            for (int ib = 0; ib < 8; ib++) {
                int s = 8 * round + ib;
                int aux = s << 28;
                int[] sign7 = new int[4];
                for (int l = 0; l < 4; l++) {
                    sign7[l] = rnd.nextInt(128);
                    aux |= sign7[l] << 7 * l;
                }
                b.putInt(66 + 4 * ib, aux);
                for (int l = 0; l < 4; l++) {
                    int signs = withParity(sign7[l]);
                    for (int half = 0; half < 2; half++) {
                        int idx = rnd.nextInt(256);
                        b.put(2 + 8 * ib + 2 * l + half, (byte) idx);
                        for (int j = 0; j < 4; j++) {
                            int k = 4 * half + j;
                            expected[32 * ib + 8 * l + k] = d * (0.5 + s) * 0.5 * u(IqGrids.IQ3XXS, 4 * idx + j)
                                    * ((signs >> k & 1) != 0 ? -1 : 1);
                        }
                    }
                }
            }
            assertDecodes(new IQ3_XXSCodec(), b, expected);
        }
    }

    @Test
    void iq3sTakesTheNinthIndexBitFromQh() {
        for (int round = 0; round < 2; round++) {
            ByteBuffer b = block(110);
            double d = half(b, 0, 0.5f);
            double[] expected = new double[256];
            for (int pair = 0; pair < 4; pair++) {
                int s1 = 8 * round + 2 * pair;
                int s2 = s1 + 1;
                b.put(106 + pair, (byte) (s1 | s2 << 4));
            }
            for (int g = 0; g < 64; g++) { // g-th 4-value entry; 8 per 32 weights
                int idx = (g + round) % 2 << 8 | rnd.nextInt(256);
                b.put(2 + g, (byte) idx);
                b.put(66 + g / 8, (byte) (b.get(66 + g / 8) | (idx >> 8) << (g % 8)));
                int ib32 = g / 8;
                int sc = ib32 % 2 == 0 ? 8 * round + 2 * (ib32 / 2) : 8 * round + 2 * (ib32 / 2) + 1;
                for (int j = 0; j < 4; j++) {
                    expected[4 * g + j] = d * (1 + 2 * sc) * u(IqGrids.IQ3S, 4 * idx + j);
                }
            }
            for (int k = 0; k < 32; k++) { // one sign byte per 8 weights
                int signs = rnd.nextInt(256);
                b.put(74 + k, (byte) signs);
                for (int j = 0; j < 8; j++) {
                    expected[8 * k + j] *= (signs >> j & 1) != 0 ? -1 : 1;
                }
            }
            assertDecodes(new IQ3_SCodec(), b, expected);
        }
    }

    @Test
    void iq1sAppliesScaleAndBothShiftSigns() {
        for (int round = 0; round < 2; round++) {
            ByteBuffer b = block(50);
            double d = half(b, 0, 0.3f);
            double[] expected = new double[256];
            for (int ib = 0; ib < 8; ib++) {
                int s = (ib + round) % 8;
                boolean negative = (ib + round) % 2 == 1;
                int qh = s << 12 | (negative ? 0x8000 : 0);
                for (int l = 0; l < 4; l++) {
                    int idx = (ib + l) % 8 << 8 | rnd.nextInt(256);
                    b.put(2 + 4 * ib + l, (byte) idx);
                    qh |= (idx >> 8) << 3 * l;
                    for (int j = 0; j < 8; j++) {
                        expected[32 * ib + 8 * l + j] =
                                d * (2 * s + 1) * (IqGrids.IQ1S[8 * idx + j] + (negative ? -0.125 : 0.125));
                    }
                }
                b.putShort(34 + 2 * ib, (short) qh);
            }
            assertDecodes(new IQ1_SCodec(), b, expected);
        }
    }

    @Test
    void iq1mSplitsScalesPerSixteenAndAssemblesTheHalfScale() {
        for (int round = 0; round < 2; round++) {
            ByteBuffer b = block(56);
            short dBits = Float.floatToFloat16(round == 0 ? 0.07f : -3.5f);
            double d = Float.float16ToFloat(dBits);
            int[] sc = new int[4];
            int[] s3 = new int[16]; // 3-bit scale per 16 weights
            for (int h = 0; h < 16; h++) {
                s3[h] = (h + round * 3) % 8;
                int ib = h / 2;
                sc[ib / 2] |= s3[h] << (6 * (ib % 2) + 3 * (h % 2));
            }
            for (int w = 0; w < 4; w++) {
                sc[w] |= ((dBits & 0xFFFF) >> 4 * w & 0xF) << 12;
                b.putShort(48 + 2 * w, (short) sc[w]);
            }
            double[] expected = new double[256];
            for (int g = 0; g < 32; g++) { // groups of 8 weights
                int idx = (g + round) % 8 << 8 | rnd.nextInt(256);
                boolean negative = (g / 2 + round) % 2 == 0;
                b.put(g, (byte) idx);
                int nibble = (idx >> 8) | (negative ? 8 : 0);
                b.put(32 + g / 2, (byte) (b.get(32 + g / 2) | nibble << 4 * (g % 2)));
                for (int j = 0; j < 8; j++) {
                    expected[8 * g + j] =
                            d * (2 * s3[g / 2] + 1) * (IqGrids.IQ1S[8 * idx + j] + (negative ? -0.125 : 0.125));
                }
            }
            assertDecodes(new IQ1_MCodec(), b, expected);
        }
    }

    @Test
    void allZeroBlocksDecodeToFiniteValues() {
        for (BlockCodec codec : IqCodecs.ALL) {
            int n = 2 * codec.type().blockSize();
            float[] y = new float[n];
            codec.dequantize(MemorySegment.ofArray(new byte[2 * codec.type().blockBytes()]), 0, y, 0, n);
            for (float v : y) {
                assertThat(Float.isFinite(v)).as("%s", codec.type()).isTrue();
            }
        }
    }

    private static int withParity(int sign7) {
        return sign7 | (Integer.bitCount(sign7) & 1) << 7;
    }

    private static int u(byte[] grid, int i) {
        return grid[i] & 0xFF;
    }

    private static ByteBuffer block(int bytes) {
        return ByteBuffer.allocate(bytes).order(ByteOrder.LITTLE_ENDIAN);
    }

    /** Stores {@code value} as f16 at {@code offset} and returns the stored value. */
    private static double half(ByteBuffer b, int offset, float value) {
        short h = Float.floatToFloat16(value);
        b.putShort(offset, h);
        return Float.float16ToFloat(h);
    }

    private static float[] decode(BlockCodec codec, ByteBuffer b, int n) {
        float[] y = new float[n];
        codec.dequantize(MemorySegment.ofArray(b.array()), 0, y, 0, n);
        return y;
    }

    private static void assertDecodes(BlockCodec codec, ByteBuffer b, double[] expected) {
        float[] y = decode(codec, b, expected.length);
        for (int i = 0; i < expected.length; i++) {
            assertClose(y[i], expected[i], codec.type() + " element " + i);
        }
    }

    private static void assertClose(float actual, double expected, String what) {
        if (Math.abs(expected) > Float.MAX_VALUE) { // overflows float in ggml as well
            assertThat(actual).as(what).isEqualTo(expected > 0 ? Float.POSITIVE_INFINITY : Float.NEGATIVE_INFINITY);
            return;
        }
        assertThat((double) actual).as(what).isCloseTo(expected, org.assertj.core.data.Offset.offset(
                Math.abs(expected) * 1e-6 + Double.MIN_VALUE));
    }
}
