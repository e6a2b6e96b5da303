package aether.runtime.quant;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * Q8_K has no golden bytes (llama.cpp only makes it on the fly for dot products), so its quantizer is checked against
 * its defining invariants on the golden source tensors and on random rows.
 */
class Q8_KCodecTest {

    private final Q8_KCodec codec = new Q8_KCodec();

    @Test
    void shouldKeepInvariantsOnEveryGoldenSourceTensor() {
        KQuantGolden golden = KQuantGolden.load();
        String sourceFile = golden.index.get("source").get("file").asText();
        int tensors = 0;
        for (JsonNode t : golden.index.get("source").get("tensors")) {
            long n = KQuantGolden.elements(t);
            if (!t.get("ggml_type").asText().equals("F32") || n % 256 != 0) {
                continue;
            }
            checkInvariants(golden.floats(sourceFile, t.get("data_offset").asLong(), Math.toIntExact(n)));
            tensors++;
        }
        assertThat(tensors).isGreaterThanOrEqualTo(7);
    }

    @Test
    void shouldKeepInvariantsOnRandomRowsWithZeroAndConstantBlocks() {
        Random r = new Random(42);
        for (int trial = 0; trial < 200; trial++) {
            float[] x = new float[256 * 3];
            for (int b = 0; b < 3; b++) {
                float s = (float) Math.pow(10, -30 + 60 * r.nextDouble()); // f32 scale: any finite magnitude works
                float[] block = KQuantPropertiesSupport.block(r, r.nextInt(KQuantPropertiesSupport.KINDS), 1f);
                for (int i = 0; i < 256; i++) {
                    x[256 * b + i] = block[i] / KQuantPropertiesSupport.MAX_ABS * s;
                }
            }
            checkInvariants(x);
        }
    }

    private void checkInvariants(float[] x) {
        int blocks = x.length / 256;
        MemorySegment q = MemorySegment.ofArray(new byte[blocks * Q8_KCodec.BLOCK_BYTES]);
        codec.quantize(x, 0, x.length, q, 0);
        float[] y = new float[x.length];
        codec.dequantize(q, 0, y, 0, x.length);
        for (int b = 0; b < blocks; b++) {
            long blk = (long) b * Q8_KCodec.BLOCK_BYTES;
            float d = q.get(LittleEndian.FLOAT, blk + Q8_KCodec.D_OFFSET);
            float max = 0;
            for (int i = 0; i < 256; i++) {
                if (Math.abs(x[256 * b + i]) > Math.abs(max)) {
                    max = x[256 * b + i];
                }
            }
            // d = 1/iscale with iscale = -127/max: the element of largest magnitude maps to -127
            assertThat(d).isEqualTo(max == 0 ? 0f : 1 / (-127f / max));
            for (int j = 0; j < 16; j++) {
                int sum = 0;
                for (int i = 0; i < 16; i++) {
                    sum += q.get(ValueLayout.JAVA_BYTE, blk + Q8_KCodec.QS_OFFSET + 16 * j + i);
                }
                short bsum = q.get(LittleEndian.SHORT, blk + Q8_KCodec.BSUMS_OFFSET + 2L * j);
                assertThat((int) bsum).as("block %d bsums[%d]", b, j).isEqualTo(sum);
            }
            for (int i = 256 * b; i < 256 * (b + 1); i++) {
                int qi = q.get(ValueLayout.JAVA_BYTE, blk + Q8_KCodec.QS_OFFSET + i - 256 * b);
                assertThat(y[i]).isEqualTo(d * qi);
                assertThat(qi).isBetween(-127, 127);
                // nearest of 255 levels: within half a step (plus the rounding of x·iscale and of d·q)
                double err = Math.abs((double) x[i] - y[i]);
                assertThat(err).as("element %d: x=%s y=%s d=%s", i, x[i], y[i], d)
                        .isLessThanOrEqualTo(0.5 * Math.abs(d) * (1 + 1e-5) + Math.ulp(y[i]));
            }
        }
    }

    @Test
    void shouldWriteZeroScaleQuantsAndBsumsForAnAllZeroBlockOverStaleBytes() {
        byte[] raw = new byte[Q8_KCodec.BLOCK_BYTES];
        java.util.Arrays.fill(raw, (byte) 0x5A);
        codec.quantize(new float[256], 0, 256, MemorySegment.ofArray(raw), 0);
        assertThat(raw).containsOnly((byte) 0);
    }
}
