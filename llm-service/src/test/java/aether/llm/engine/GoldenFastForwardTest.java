package aether.llm.engine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.fail;

import aether.llm.arch.Architecture;
import aether.llm.arch.Numerics;
import aether.llm.gguf.GgufFile;
import aether.runtime.ir.DType;
import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Named;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * llama.cpp's greedy generations ({@code shared/golden/forward}) on the fast path: {@link PagedInferenceModel} with
 * compiled step graphs (f32 activations in float, Matmul kernels, paged f32 KV cache as llama.cpp's goldens used),
 * prompt in one step, then one decode step per token. Ids must be equal; the top-8 log-probabilities agree within the
 * per-type tolerances below. The graphs carry ggml's activation rounding ({@link Numerics#GGML_CPU}), as in {@link
 * GoldenForwardTest}: without it, quantized random models pick other ids after a few steps.
 *
 * <p>Tolerances (max |logprob - llama.cpp's| over every top-8 entry of every step), measured on the records at hand:
 * F32 3e-5 (stories260K 1e-5); F16 0.027; Q8_0 0.33; Q4_0 0.38; Q4_K 0.51; Q6_K 0.81. As in {@link
 * GoldenForwardTest}, the quantized deviations are single steps where an activation lands on the other side of a Q8
 * rounding boundary (the kernels accumulate in float, in their own order, where ggml uses its SIMD order); the first
 * steps agree to ~1e-5. The tolerances sit a little above those maxima; ids are compared exactly.
 */
class GoldenFastForwardTest {

    private static final int TOP = 8;
    private static final Map<String, Double> TOLERANCE = Map.of(
            "f32", 1e-3,
            "f16", 0.05,
            "q8_0", 0.5,
            "q4_0", 0.7,
            "q4_k", 0.7,
            "q6_k", 1.0);

    private record Loaded(GgufFile file, PagedInferenceModel model) {}

    /**
     * With {@link Numerics#FLOAT32} (what {@code LoadedModel.open} runs: activations stay f32 when they meet F16
     * weights, where llama.cpp rounds them to F16), for the float models; measured maxima: F32 3.4e-5 (stories260K
     * 8.6e-6), F16 0.059 (qwen3), 0.045 (phi3), 0.033 (qwen2), 0.022 (gemma2).
     *
     * <p>Issue 5 asks 1e-3 for F16 models too; that is out of reach for any engine that does not reproduce ggml's
     * float32 arithmetic bit for bit, and rounding activations to F16 in the users' engine (what {@link
     * Numerics#GGML_CPU} does) would only halve the gap (F16 max 0.059 → 0.028 above). Why: llama.cpp rounds every
     * activation that meets an F16 weight to F16 (2^-11 relative steps) from a float32 value whose last bits depend
     * on the summation order. Where that value lies within float32 noise (~1e-7 relative) of a point halfway between
     * two F16 values, another order rounds it to the neighbouring F16 value; on these sharp random models (logits' sd
     * ~12) one such flip moves the top log-probs by ~2e-3 to 2e-2; a flip in the FFN or output path affects one step,
     * a flip in a K or V row every later step. With ~2,800 F16-rounded activations per token, flips come every few
     * tokens. The records show it: on the reference executor (GoldenForwardTest, float64 sums, GGML_CPU)
     * rand-qwen3-tied prompt 1 agrees with llama.cpp to 4e-6 for steps 0-4, jumps to 6.1e-3 at step 5, is back at
     * 4.5e-6 at step 7 and at 5e-3..1.9e-2 at every other later step; rand-phi3 prompt 1 agrees to
     * 3e-6 except step 2 (3.1e-4, a flip in the last layer only) until step 5 (5.2e-3); every record with a prompt of
     * 5+ tokens is already off by 3e-3..3.2e-2 at step 0 (the flips happen during the prompt). And {@link
     * EngineAgreementTest} shows the mechanism without llama.cpp: our fast and reference executors, which differ only
     * in summation order, agree to 8e-5 on every F16 record with FLOAT32 numerics but part by 0.011..0.028 with
     * GGML_CPU, while the F32 records agree to 3.4e-5 either way. Matching llama.cpp to 1e-3 would take its exact
     * order for every op that feeds an F16 rounding (tinyBLAS / ggml_vec_dot_f16 lane order for the x86 build that
     * made the goldens, ggml's SIMD expf in SiLU and softmax, its RoPE angle recurrence, double sums in RMSNorm).
     */
    private static final Map<String, Double> FLOAT32_TOLERANCE = Map.of("f32", 1e-3, "f16", 0.1);

    private static final Map<String, Loaded> MODELS = new HashMap<>();

    static Stream<Named<GoldenForwardTest.Case>> forwardRecords() throws IOException {
        return GoldenForwardTest.forwardRecords();
    }

    static Stream<Named<GoldenForwardTest.Case>> storiesRecords() throws IOException {
        return GoldenForwardTest.storiesRecords();
    }

    static Stream<Named<GoldenForwardTest.Case>> floatRecords() throws IOException {
        return Stream.concat(GoldenForwardTest.forwardRecords(), GoldenForwardTest.storiesRecords())
                .filter(c -> FLOAT32_TOLERANCE.containsKey(c.getPayload().weights()));
    }

    @AfterAll
    static void closeModels() {
        MODELS.values().forEach(m -> m.model().close());
        MODELS.clear();
    }

    private static PagedInferenceModel model(Path path, Numerics numerics) {
        return MODELS.computeIfAbsent(path + " " + numerics, key -> {
            Path p = path;
            try {
                GgufFile file = GgufFile.open(p);
                Architecture a = Architecture.load(file);
                int context = Math.min(256, a.config().contextLength());
                return new Loaded(file, PagedInferenceModel.open(a, numerics, context, 64,
                        2 * (context / PagedInferenceModel.BLOCK_POSITIONS), DType.F32, 2, file::close));
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }).model();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("forwardRecords")
    @Timeout(120)
    void shouldReproduceLlamaCppGreedyIdsAndTopLogprobs(GoldenForwardTest.Case c) {
        check(c, Numerics.GGML_CPU, TOLERANCE.get(c.weights()));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("floatRecords")
    @Timeout(120)
    void shouldReproduceLlamaCppGreedyIdsWithFloat32Activations(GoldenForwardTest.Case c) {
        check(c, Numerics.FLOAT32, FLOAT32_TOLERANCE.get(c.weights()));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("storiesRecords")
    @Timeout(120)
    void shouldReproduceLlamaCppGreedyIdsOfStories260K(GoldenForwardTest.Case c) {
        check(c, Numerics.GGML_CPU, TOLERANCE.get(c.weights()));
    }

    private static void check(GoldenForwardTest.Case c, Numerics numerics, double tolerance) {
        PagedInferenceModel model = model(c.model(), numerics);
        int vocab = model.config().vocabSize();
        float[] logits = new float[vocab];
        double worst = 0;
        try (Sequence s = model.newSequence()) {
            model.step(List.of(InferenceModel.BatchEntry.of(s, c.prompt())), logits);
            int[] expected = c.expectedIds();
            for (int step = 0; step < expected.length; step++) {
                List<TokenLogprob> ours = GreedyGenerator.topLogprobs(logits, 2 * TOP);
                assertThat(ours.get(0).id()).as("step %d greedy id", step).isEqualTo(expected[step]);
                for (JsonNode t : c.top().get(step)) {
                    int id = t.get("id").asInt();
                    double want = t.get("logprob").asDouble();
                    TokenLogprob mine = ours.stream().filter(x -> x.id() == id).findFirst().orElse(null);
                    if (mine == null) {
                        fail("step %d: llama.cpp's top token %d (logprob %.5f) is not in our top %d %s", step, id,
                                want, 2 * TOP, ours);
                    }
                    worst = Math.max(worst, Math.abs(mine.logprob() - want));
                    assertThat(mine.logprob()).as("step %d token %d logprob", step, id)
                            .isCloseTo(want, org.assertj.core.data.Offset.offset(tolerance));
                }
                if (step + 1 < expected.length) {
                    model.step(List.of(InferenceModel.BatchEntry.of(s, expected[step])), logits);
                }
            }
        }
        assertThat(model.kvStats().usedBlocks()).as("blocks after the sequence closed").isZero();
        System.out.printf(Locale.ROOT, "fast golden %s %s prompt %d: max |dlogprob| %.3g%n", numerics,
                c.model().getFileName(), c.prompt().length, worst);
    }
}
