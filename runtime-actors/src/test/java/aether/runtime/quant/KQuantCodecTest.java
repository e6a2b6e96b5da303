package aether.runtime.quant;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** Behaviour shared by the K-quant codecs: vector/scalar identity, offsets, bounds and argument checks. */
class KQuantCodecTest {

    private static final List<BlockCodec> ALL = List.of(new Q2_KCodec(), new Q3_KCodec(), new Q4_KCodec(),
            new Q5_KCodec(), new Q6_KCodec(), new Q8_KCodec());

    @Test
    void shouldDequantizeRandomBlocksIdenticallyOnVectorAndScalarPaths() {
        Random r = new Random(7);
        List<BlockCodec[]> pairs = List.of(
                new BlockCodec[] {new Q4_KCodec(false), new Q4_KCodec(true)},
                new BlockCodec[] {new Q5_KCodec(false), new Q5_KCodec(true)},
                new BlockCodec[] {new Q6_KCodec(false), new Q6_KCodec(true)});
        for (BlockCodec[] pair : pairs) {
            int blockBytes = pair[0].type().blockBytes();
            // enough rounds for C2 to compile both paths, so the comparison covers the intrinsified vector code
            for (int trial = 0; trial < 3000; trial++) {
                int blocks = 1 + r.nextInt(9);
                int offset = r.nextInt(5); // unaligned block starts
                byte[] raw = new byte[offset + blocks * blockBytes];
                r.nextBytes(raw); // every bit pattern, including NaN/Inf/subnormal f16 scales
                float[] scalar = new float[blocks * 256];
                float[] vector = new float[blocks * 256];
                pair[0].dequantize(MemorySegment.ofArray(raw), offset, scalar, 0, scalar.length);
                pair[1].dequantize(MemorySegment.ofArray(raw), offset, vector, 0, vector.length);
                for (int i = 0; i < scalar.length; i++) {
                    if (Float.floatToIntBits(scalar[i]) != Float.floatToIntBits(vector[i])) {
                        throw new AssertionError("%s element %d: scalar %s, vector %s".formatted(
                                pair[0].type(), i, scalar[i], vector[i]));
                    }
                }
            }
        }
    }

    @Test
    void shouldQuantizeFromAndToOffsetsWithoutTouchingNeighbours() {
        Random r = new Random(3);
        float[] x = new float[5 + 512 + 3];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) r.nextGaussian();
        }
        for (BlockCodec codec : ALL) {
            int bytes = 2 * codec.type().blockBytes();
            byte[] atZero = new byte[bytes];
            codec.quantize(Arrays.copyOfRange(x, 5, 517), 0, 512, MemorySegment.ofArray(atZero), 0);
            byte[] shifted = new byte[11 + bytes + 13];
            Arrays.fill(shifted, (byte) 0x33);
            codec.quantize(x, 5, 512, MemorySegment.ofArray(shifted), 11);
            assertThat(Arrays.copyOfRange(shifted, 11, 11 + bytes)).as(codec.type().name()).isEqualTo(atZero);
            assertThat(Arrays.copyOfRange(shifted, 0, 11)).containsOnly((byte) 0x33);
            assertThat(Arrays.copyOfRange(shifted, 11 + bytes, shifted.length)).containsOnly((byte) 0x33);
        }
    }

    @Test
    void shouldOverwriteStaleBytesOfTheDestination() {
        Random r = new Random(5);
        float[] x = new float[256];
        for (int i = 0; i < 256; i++) {
            x[i] = i % 7 == 0 ? 0 : (float) r.nextGaussian();
        }
        x[3] = 0;
        for (BlockCodec codec : ALL) {
            byte[] clean = new byte[codec.type().blockBytes()];
            byte[] stale = new byte[codec.type().blockBytes()];
            Arrays.fill(stale, (byte) 0xFF);
            codec.quantize(x, 0, 256, MemorySegment.ofArray(clean), 0);
            codec.quantize(x, 0, 256, MemorySegment.ofArray(stale), 0);
            assertThat(stale).as(codec.type().name()).isEqualTo(clean);
            byte[] zeroStale = new byte[codec.type().blockBytes()];
            Arrays.fill(zeroStale, (byte) 0xFF);
            codec.quantize(new float[256], 0, 256, MemorySegment.ofArray(zeroStale), 0);
            float[] y = new float[256];
            codec.dequantize(MemorySegment.ofArray(zeroStale), 0, y, 0, 256);
            for (float v : y) {
                assertThat(v == 0).as("%s all-zero block dequantizes to ±0, found %s", codec.type(), v).isTrue();
            }
        }
    }

    @Test
    void shouldRejectCountsThatAreNotWholeBlocks() {
        for (BlockCodec codec : ALL) {
            assertThat(codec.canQuantize()).isTrue();
            assertThatThrownBy(() -> codec.quantize(new float[300], 0, 300, MemorySegment.ofArray(new byte[1024]), 0))
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining(codec.type().name())
                    .hasMessageContaining("300");
        }
    }

    @Test
    void shouldFailInsteadOfReadingPastTheSource() {
        for (BlockCodec codec : ALL) {
            MemorySegment oneBlock = MemorySegment.ofArray(new byte[codec.type().blockBytes()]);
            assertThatThrownBy(() -> codec.dequantize(oneBlock, 0, new float[512], 0, 512))
                    .isInstanceOf(IndexOutOfBoundsException.class);
        }
    }
}
