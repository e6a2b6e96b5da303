package aether.llm.arch;

import static org.assertj.core.api.Assertions.assertThat;

import aether.runtime.ir.Shape;
import aether.runtime.quant.BlockCodec;
import aether.runtime.quant.BlockCodecs;
import aether.runtime.tensor.GgmlType;
import aether.scheduler.exec.ReferenceExecutor;
import aether.scheduler.graph.Graph;
import aether.scheduler.graph.Tensor;
import java.lang.foreign.MemorySegment;
import java.util.Random;
import java.util.function.UnaryOperator;
import org.junit.jupiter.api.Test;

/**
 * The graph-op emulation of ggml's activation quantization, bit for bit against scalar float32 ports of llama.cpp's
 * quantizers (the AVX2 Q8_0 path and quantize_row_q8_K_ref), on fresh random rows with edge-case blocks.
 */
class GgmlActivationsTest {

    private static final int ROWS = 3;
    private static final int COLS = 512;

    /** Rows of mixed scales, plus an all-zero block, a one-hot block, halfway values and huge/tiny values. */
    private static float[] rows(long seed) {
        Random r = new Random(seed);
        float[] x = new float[ROWS * COLS];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) (r.nextGaussian() * Math.exp(r.nextGaussian() * 2));
        }
        for (int i = 0; i < 256; i++) {
            x[i] = 0;                                   // a whole Q8_K block (and eight Q8_0 blocks) of zeros
        }
        x[COLS + 300] = -3.75f;                         // one-hot Q8_0 block
        for (int i = COLS + 288; i < COLS + 320; i++) {
            x[i] = i == COLS + 300 ? -3.75f : 0;
        }
        for (int j = 0; j < 32; j++) {
            x[2 * COLS + j] = j == 0 ? 127f : j % 11 - 5 + 0.5f;   // Q8_0 scale 1: exact ties k + 0.5
        }
        x[2 * COLS + 40] = 6e4f;
        x[2 * COLS + 300] = 1e-30f;
        return x;
    }

    private static float[] viaGraph(float[] x, UnaryOperator<Tensor> f) {
        Graph g = new Graph();
        Tensor in = g.tensor(x, Shape.of(ROWS, COLS));
        return f.apply(in).toFloatArray(new ReferenceExecutor());
    }

    /** ggml-cpu x86 quantize_row_q8_0 (AVX2): id = 127 / amax, round half to even, d stored as F16. */
    private static float[] q8_0Reference(float[] x) {
        float[] out = new float[x.length];
        for (int b = 0; b < x.length; b += 32) {
            float amax = 0;
            for (int j = 0; j < 32; j++) {
                amax = Math.max(amax, Math.abs(x[b + j]));
            }
            float d = Float.float16ToFloat(Float.floatToFloat16(amax / 127f));
            float id = amax != 0 ? 127f / amax : 0f;
            for (int j = 0; j < 32; j++) {
                out[b + j] = (float) Math.rint(x[b + j] * id) * d;
            }
        }
        return out;
    }

    /** quantize_row_q8_K_ref: iscale = -127 / max (signed), nearest_int, d = 1 / iscale. */
    private static float[] q8_KReference(float[] x) {
        float[] out = new float[x.length];
        for (int b = 0; b < x.length; b += 256) {
            float amax = 0;
            float max = 0;
            for (int j = 0; j < 256; j++) {
                if (Math.abs(x[b + j]) > amax) {
                    amax = Math.abs(x[b + j]);
                    max = x[b + j];
                }
            }
            if (amax == 0) {
                continue;
            }
            float iscale = -127f / max;
            float d = 1 / iscale;
            for (int j = 0; j < 256; j++) {
                out[b + j] = Math.min(127, (int) Math.rint(iscale * x[b + j])) * d;
            }
        }
        return out;
    }

    /**
     * Equal values (0.0 == -0.0: ggml multiplies integer quants, so a zero's sign never reaches a sum); on failure,
     * names the first differing element and how many differ.
     */
    private static void assertSameValues(float[] actual, float[] expected) {
        assertThat(actual).hasSameSizeAs(expected);
        int first = -1;
        int count = 0;
        for (int i = 0; i < actual.length; i++) {
            if (actual[i] != expected[i] && !(Float.isNaN(actual[i]) && Float.isNaN(expected[i]))) {
                first = first < 0 ? i : first;
                count++;
            }
        }
        if (count > 0) {
            throw new AssertionError(count + " of " + actual.length + " elements differ; first at " + first + ": "
                    + actual[first] + " expected " + expected[first]);
        }
    }

    @Test
    void shouldQuantizeLikeGgmlQ8_0BitForBit() {
        for (long seed = 1; seed <= 5; seed++) {
            float[] x = rows(seed);
            assertSameValues(viaGraph(x, GgmlActivations::q8_0), q8_0Reference(x));
        }
    }

    @Test
    void shouldQuantizeLikeGgmlQ8_KBitForBit() {
        for (long seed = 1; seed <= 5; seed++) {
            float[] x = rows(seed);
            assertSameValues(viaGraph(x, GgmlActivations::q8_K), q8_KReference(x));
        }
    }

    @Test
    void shouldMatchTheQ8_KCodecRoundTrip() {
        BlockCodec codec = BlockCodecs.require(GgmlType.Q8_K);
        float[] x = rows(7);
        MemorySegment blocks = MemorySegment.ofArray(new byte[(int) GgmlType.Q8_K.bytesFor(x.length)]);
        codec.quantize(x, 0, x.length, blocks, 0);
        float[] expected = new float[x.length];
        codec.dequantize(blocks, 0, expected, 0, x.length);
        assertSameValues(viaGraph(x, GgmlActivations::q8_K), expected);
    }

    @Test
    void shouldPickTheVecDotTypeOfEachWeightType() {
        float[] x = rows(3);
        float[] f16 = new float[x.length];
        for (int i = 0; i < x.length; i++) {
            f16[i] = Float.float16ToFloat(Float.floatToFloat16(x[i]));
        }
        assertSameValues(viaGraph(x, t -> GgmlActivations.forWeight(t, GgmlType.F32)), x);
        assertSameValues(viaGraph(x, t -> GgmlActivations.forWeight(t, GgmlType.F16)), f16);
        assertSameValues(viaGraph(x, t -> GgmlActivations.forWeight(t, GgmlType.Q4_0)), q8_0Reference(x));
        assertSameValues(viaGraph(x, t -> GgmlActivations.forWeight(t, GgmlType.Q6_K)), q8_KReference(x));
    }

    /** ggml_vec_gelu_f32 with GGML_GELU_FP16: 0 up to -10, x from 10, else the F16 table of F16 inputs. */
    @Test
    void shouldEvaluateGeluLikeGgmlsF16Table() {
        float[] x = rows(4);
        x[5] = 10f;
        x[6] = -10f;
        x[7] = 9.99f;
        x[8] = -9.99f;
        float[] expected = new float[x.length];
        for (int i = 0; i < x.length; i++) {
            if (x[i] <= -10) {
                expected[i] = 0;
            } else if (x[i] >= 10) {
                expected[i] = x[i];
            } else {
                float h = Float.float16ToFloat(Float.floatToFloat16(x[i]));
                float g = (float) (0.5 * h * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * h * (1 + 0.044715 * h * h))));
                expected[i] = Float.float16ToFloat(Float.floatToFloat16(g));
            }
        }
        assertSameValues(viaGraph(x, GgmlActivations::gelu), expected);
    }
}
