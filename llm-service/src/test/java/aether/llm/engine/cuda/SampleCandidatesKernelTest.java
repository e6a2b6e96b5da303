package aether.llm.engine.cuda;

import static org.assertj.core.api.Assertions.assertThat;

import aether.device.cuda.CudaContext;
import aether.device.cuda.CudaKernels;
import aether.device.cuda.GpuFixture;
import aether.llm.sampling.Candidates;
import aether.llm.sampling.LogitAdjustments;
import aether.llm.sampling.Sampler;
import aether.llm.sampling.SamplerConfig;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import jcuda.driver.CUdeviceptr;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * {@code sample_candidates} ({@link CudaKernels#sampleCandidates}) against {@link Candidates#computeOnHost}, the host
 * computation the samplers' exactness rests on: random rows with the adjustments of random samplers (logit bias
 * including bans, repetition penalty on positive and negative logits, presence and frequency penalties), and crafted
 * rows (ties across the top-K threshold, a row of equal values, mostly banned rows, signed zeros, NaN and +Infinity,
 * a vocabulary below K). Ids and adjusted values must be identical, the flags equal, the exp sum within 1e-10
 * relative (a bound for 32k terms summed in another order; typically ~1e-14); the logits themselves must be left as
 * they were; blocks map to rows through their headers (reversed here). Most rows also ask for the draw over the whole
 * row (a random u and temperature): its crossing and decided flag must be the host's, and a decided crossing that of
 * a plain sequential draw; 64 rows of 128,256 tokens at once too.
 */
@Tag("gpu")
@Timeout(120)
class SampleCandidatesKernelTest {

    @RegisterExtension
    static final GpuFixture gpu = new GpuFixture();

    @Test
    void randomRowsWithAdjustmentsMatchTheHost() {
        long seed = System.nanoTime();
        System.out.println("seed " + seed);
        SplittableRandom r = new SplittableRandom(seed);
        check(32_000 + 7, 24, r);
        check(1000, 9, r);
        check(50, 5, r);   // below K: every token is a candidate
        check(20, 5, r);   // below a warp: the draw is one scan
    }

    /** Many rows of a large vocabulary at once (a full decode pass of Llama 3's 128,256 tokens). */
    @Test
    void manyRowsOfALargeVocabularyMatchTheHost() {
        long seed = System.nanoTime();
        System.out.println("seed " + seed);
        check(128_256, 64, new SplittableRandom(seed));
    }

    private void check(int n, int rows, SplittableRandom r) {
        float[] logits = new float[rows * n];
        double[] uniforms = new double[rows];
        double[] inverseTemperatures = new double[rows];
        List<LogitAdjustments> adjustments = new ArrayList<>();
        for (int row = 0; row < rows; row++) {
            int o = row * n;
            for (int i = 0; i < n; i++) {
                logits[o + i] = (float) (r.nextGaussian() * 3);
            }
            switch (row) {
                case 0 -> {   // all equal (an even count: the last banned for an odd n)
                    Arrays.fill(logits, o, o + n, 1.5f);
                    if (n % 2 == 1) {
                        logits[o + n - 1] = Float.NEGATIVE_INFINITY;
                    }
                }
                case 1 -> { for (int i = 0; i < n; i++) logits[o + i] = r.nextInt(3); }        // ties at the cut
                case 2 -> { Arrays.fill(logits, o, o + n, Float.NEGATIVE_INFINITY); logits[o + n / 2] = -3f; }
                case 3 -> { logits[o] = -0f; logits[o + 1] = 0f; for (int i = 2; i < n; i++) logits[o + i] = -1f; }
                case 4 -> logits[o + r.nextInt(n)] = Float.NaN;
                case 5 -> logits[o + n - 1] = Float.POSITIVE_INFINITY;
                case 6 -> { for (int i = 0; i < n; i++) logits[o + i] = (float) (r.nextGaussian() * 0.01); }
                default -> {
                    for (int p = r.nextInt(4); p > 0; p--) {
                        logits[o + r.nextInt(n)] = 12f;   // tied peaks
                    }
                }
            }
            adjustments.add(row == 0 ? new LogitAdjustments() : randomAdjustments(r, n));   // row 0 stays equal
            // the draw over the whole row for most rows (row 0, all equal, with u = 1/2: the target on a boundary)
            uniforms[row] = row == 0 ? 0.5 : r.nextInt(5) == 0 ? Double.NaN : r.nextDouble();
            inverseTemperatures[row] = 1.0 / (float) (0.1 + r.nextDouble() * 1.9);
        }
        // block j runs row rows - 1 - j
        int words = rows * CudaKernels.ADJUST_HEADER_WORDS;
        for (LogitAdjustments a : adjustments) {
            words += a.size() * CudaKernels.ADJUST_ENTRY_WORDS;
        }
        int[] adjust = new int[words];
        int at = rows * CudaKernels.ADJUST_HEADER_WORDS;
        for (int j = 0; j < rows; j++) {
            int row = rows - 1 - j;
            LogitAdjustments a = adjustments.get(row);
            int h = CudaKernels.ADJUST_HEADER_WORDS * j;
            adjust[h] = row;
            adjust[h + 1] = at;
            adjust[h + 2] = a.size();
            adjust[h + 3] = Float.floatToRawIntBits(a.repeat());
            long u = Double.doubleToRawLongBits(uniforms[row]);
            long t = Double.doubleToRawLongBits(inverseTemperatures[row]);
            adjust[h + 4] = (int) u;
            adjust[h + 5] = (int) (u >>> 32);
            adjust[h + 6] = (int) t;
            adjust[h + 7] = (int) (t >>> 32);
            for (int e = 0; e < a.size(); e++) {
                adjust[at++] = a.id(e);
                adjust[at++] = a.flags(e);
                adjust[at++] = Float.floatToRawIntBits(a.bias(e));
                adjust[at++] = Float.floatToRawIntBits(a.subtrahend(e));
            }
        }
        CudaContext cuda = gpu.cuda();
        CUdeviceptr dLogits = gpu.upload(logits);
        CUdeviceptr work = gpu.alloc(logits.length * 4L);
        CUdeviceptr dAdjust = gpu.upload(adjust);
        CUdeviceptr out = gpu.alloc((long) rows * CudaKernels.CANDIDATE_WORDS * 4);
        cuda.fill32(out, 0x7fc00000, (long) rows * CudaKernels.CANDIDATE_WORDS);
        gpu.kernels().sampleCandidates(dLogits, rows, n, work, dAdjust, out);
        int[] got = new int[rows * CudaKernels.CANDIDATE_WORDS];
        cuda.download(out, got);
        float[] after = new float[logits.length];
        cuda.download(dLogits, after);
        // isEqualTo (Arrays.equals, bit patterns): containsExactly computes an element diff that is quadratic in the
        // length and ran past the timeout on 768k floats (H100, 2026-12-07)
        assertThat(after).as("the logits are not modified").isEqualTo(logits);
        var device = new Candidates(rows);
        var host = new Candidates(rows);
        int drawn = 0;
        int decided = 0;
        for (int j = 0; j < rows; j++) {
            int row = rows - 1 - j;
            device.readDevice(row, got, j * CudaKernels.CANDIDATE_WORDS);
            host.computeOnHost(logits, row * n, n, adjustments.get(row), row, true, uniforms[row],
                    Double.isNaN(uniforms[row]) ? Double.NaN : inverseTemperatures[row]);
        }
        for (int row = 0; row < rows; row++) {
            String what = "n " + n + " row " + row;
            assertThat(device.flagged(row)).as(what).isEqualTo(host.flagged(row));
            assertThat(device.width(row)).as(what).isEqualTo(Math.min(n, Candidates.K));
            if (host.flagged(row)) {
                continue;
            }
            for (int i = 0; i < host.width(row); i++) {
                assertThat(device.id(row, i)).as("%s candidate %d", what, i).isEqualTo(host.id(row, i));
                assertThat(Float.floatToIntBits(device.value(row, i))).as("%s value %d", what, i)
                        .isEqualTo(Float.floatToIntBits(host.value(row, i)));
            }
            if (host.value(row, 0) != Float.NEGATIVE_INFINITY) {
                double h = host.expSum(row);
                assertThat(Math.abs(device.expSum(row) - h)).as(what).isLessThanOrEqualTo(h * 1e-10);
            }
            checkDraw(device, host, row, what, logits, n, adjustments.get(row));
            if (!Double.isNaN(uniforms[row]) && host.value(row, 0) != Float.NEGATIVE_INFINITY) {
                drawn++;
                decided += device.drawDecided(row) ? 1 : 0;
            }
        }
        if (rows > 1) {
            assertThat(device.drawDecided(0)).as("the target on a boundary (all equal, u = 1/2)").isFalse();
            assertThat(device.drawnId(0)).as("the same sums of ones").isEqualTo(host.drawnId(0)).isEqualTo(n / 2);
        }
        // row 0 on purpose; a random target lands within the margin (1e-9 of the total on either side of a boundary)
        // with a probability below 2e-9 per token: up to ~2.6e-4 for a flat row of 128,256, so two more are allowed
        // (three more among 64 rows: ~1e-6)
        assertThat(decided).as("draws decided, n %d", n).isGreaterThanOrEqualTo(drawn - 3);
        assertThat(device.flagged(4)).as("NaN").isTrue();
        if (rows > 5) {
            assertThat(device.flagged(5)).as("+Infinity").isTrue();
        }
    }

    /**
     * The row's draw: the echoed u and 1/T, the device's crossing and decided flag against the host's (the host sums
     * in the kernel's order with its own exp: a target within the margin on one side is within it on the other too,
     * but for a ~1e-10 sliver), and where decided, the token of a plain sequential draw over the adjusted row (the
     * host sampler's arithmetic) and its adjusted value.
     */
    private static void checkDraw(Candidates device, Candidates host, int row, String what, float[] logits, int n,
            LogitAdjustments adjustments) {
        // bits: NaN (no draw) equals NaN
        assertThat(Double.doubleToLongBits(device.drawUniform(row))).as("%s: u", what)
                .isEqualTo(Double.doubleToLongBits(host.drawUniform(row)));
        assertThat(Double.doubleToLongBits(device.drawInverseTemperature(row))).as("%s: 1/T", what)
                .isEqualTo(Double.doubleToLongBits(host.drawInverseTemperature(row)));
        if (host.flagged(row) || Double.isNaN(host.drawUniform(row))) {
            assertThat(device.drawDecided(row)).as("%s: no draw", what).isFalse();
            return;
        }
        assertThat(device.drawDecided(row)).as("%s: decided", what).isEqualTo(host.drawDecided(row));
        if (!host.drawDecided(row)) {
            return;
        }
        assertThat(device.drawnId(row)).as("%s: drawn", what).isEqualTo(host.drawnId(row));
        assertThat(Float.floatToIntBits(device.drawnValue(row))).as(what)
                .isEqualTo(Float.floatToIntBits(host.drawnValue(row)));
        float[] adjusted = Arrays.copyOfRange(logits, row * n, (row + 1) * n);
        for (int e = 0; e < adjustments.size(); e++) {
            adjusted[adjustments.id(e)] = adjustments.apply(e, adjusted[adjustments.id(e)]);
        }
        assertThat(device.drawnId(row)).as("%s: a sequential draw", what)
                .isEqualTo(sequentialDraw(adjusted, host.drawUniform(row), host.drawInverseTemperature(row)));
        assertThat(device.drawnValue(row)).isEqualTo(adjusted[device.drawnId(row)]);
    }

    /** Sampler's draw without filters: terms in id order, the first whose running sum exceeds u times the total. */
    static int sequentialDraw(float[] v, double u, double inverseTemperature) {
        double max = Float.NEGATIVE_INFINITY;
        for (float x : v) {
            max = Math.max(max, x);
        }
        double sum = 0;
        for (float x : v) {
            sum += Math.exp((x - max) * inverseTemperature);
        }
        double target = u * sum;
        double running = 0;
        for (int i = 0; i < v.length; i++) {
            running += Math.exp((v[i] - max) * inverseTemperature);
            if (running > target) {
                return i;
            }
        }
        return -1;
    }

    /** A random sampler's adjustments after a random window: bias (bans too) and penalties on a few tokens. */
    private static LogitAdjustments randomAdjustments(SplittableRandom r, int n) {
        Map<Integer, Float> bias = new HashMap<>();
        for (int b = r.nextInt(4); b > 0; b--) {
            bias.put(r.nextInt(n), r.nextInt(4) == 0 ? Float.NEGATIVE_INFINITY : (float) (r.nextDouble() * 10 - 5));
        }
        var config = new SamplerConfig(0.8f, 40, 1f, 0f, r.nextBoolean() ? 1.3f : 0.7f, (float) r.nextDouble(),
                (float) r.nextDouble() * 0.3f, 32, bias, 1);
        Sampler s = new Sampler(config, n);
        for (int t = r.nextInt(40); t > 0; t--) {
            s.accept(r.nextInt(Math.min(n, 200)));   // repeats, so some counts are above 1
        }
        var a = new LogitAdjustments();
        s.adjustments(a);
        return a;
    }
}
