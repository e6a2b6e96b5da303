package aether.llm.engine;

import static org.assertj.core.api.Assertions.assertThat;

import aether.llm.arch.Architecture;
import aether.llm.arch.Numerics;
import aether.llm.gguf.GgufFile;
import aether.runtime.ir.DType;
import java.io.IOException;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Named;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The fast engine ({@link PagedInferenceModel#open}: float32 kernels, their own summation order) against the same
 * engine on the reference executor (float64 accumulation), teacher-forced on the golden records of the float models:
 * the top-16 log-probabilities of both must agree at every step.
 *
 * <p>This is why f16 models cannot meet issue 5's 1e-3 against llama.cpp without reproducing ggml's float32
 * arithmetic bit for bit. With {@link Numerics#FLOAT32} the two engines agree to ~1e-5 on F32 and F16 models alike
 * (max 8.2e-5, qwen3 prompt 17). With {@link Numerics#GGML_CPU}, which rounds activations to F16 before every F16
 * weight as llama.cpp does, the F16 models' engines part by 0.011 (phi3 prompt 1) to 0.028 (qwen2 prompt 17) while
 * the F32 models' still agree to 3.4e-5: whenever an
 * activation lies within float32 rounding noise (~1e-7 relative) of a point halfway between two F16 values, the two
 * summation orders round it to neighbouring F16 values (one F16 step, 2^-11 relative), and these random, deliberately
 * sharp models (logits' sd ~12) turn that single step into a log-prob change of ~5e-3; once the flipped element is in
 * a K/V row it stays for every later step. With ~2,800 F16-rounded activations per token, such near-halfway values
 * occur every few tokens. llama.cpp's own summation order (tinyBLAS / {@code ggml_vec_dot_f16} SIMD order, ggml's
 * {@code expf}/SiLU approximations) is a third order, so we sit at the same distance from it (GoldenForwardTest,
 * GoldenFastForwardTest). The measured maxima are in {@link GoldenFastForwardTest}'s comment.
 */
class EngineAgreementTest {

    private static final int TOP = 16;
    /** Max |logprob(fast) - logprob(reference)| by weight type and numerics (see the class comment). */
    private static final Map<String, Double> TOLERANCE = Map.of(
            "f32 FLOAT32", 2e-4, "f16 FLOAT32", 2e-4,
            "f32 GGML_CPU", 2e-4, "f16 GGML_CPU", 0.06);

    static Stream<Arguments> records() throws IOException {
        return Stream.concat(GoldenForwardTest.forwardRecords(), GoldenForwardTest.storiesRecords())
                .filter(c -> c.getPayload().weights().equals("f32") || c.getPayload().weights().equals("f16"))
                .flatMap(c -> Stream.of(Numerics.FLOAT32, Numerics.GGML_CPU)
                        .map(n -> Arguments.of(Named.of(c.getName(), c.getPayload()), n)));
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("records")
    @Timeout(180)
    void shouldGiveTheSameLogprobsOnTheFastAndTheReferenceExecutor(GoldenForwardTest.Case c, Numerics numerics)
            throws IOException {
        double tolerance = TOLERANCE.get(c.weights() + " " + numerics);
        try (GgufFile file = GgufFile.open(c.model())) {
            Architecture a = Architecture.load(file);
            int context = Math.min(256, a.config().contextLength());
            int blocks = context / PagedInferenceModel.BLOCK_POSITIONS;
            try (var fast = PagedInferenceModel.open(a, numerics, context, 64, blocks, DType.F32, 2, () -> { });
                    var reference = PagedInferenceModel.reference(a, numerics, context, 64, blocks, DType.F32,
                            () -> { })) {
                int vocab = a.config().vocabSize();
                float[] f = new float[vocab];
                float[] r = new float[vocab];
                double worst = 0;
                var perStep = new StringBuilder();
                try (Sequence sf = fast.newSequence(); Sequence sr = reference.newSequence()) {
                    fast.step(List.of(InferenceModel.BatchEntry.of(sf, c.prompt())), f);
                    reference.step(List.of(InferenceModel.BatchEntry.of(sr, c.prompt())), r);
                    int[] ids = c.expectedIds();
                    for (int step = 0; step < ids.length; step++) {
                        List<TokenLogprob> top = GreedyGenerator.topLogprobs(r, TOP);
                        List<TokenLogprob> all = GreedyGenerator.topLogprobs(f, vocab);
                        double stepWorst = 0;
                        for (TokenLogprob t : top) {
                            double mine = all.stream().filter(x -> x.id() == t.id()).findFirst().orElseThrow()
                                    .logprob();
                            stepWorst = Math.max(stepWorst, Math.abs(mine - t.logprob()));
                        }
                        worst = Math.max(worst, stepWorst);
                        perStep.append(String.format(Locale.ROOT, " %.1e", stepWorst));
                        if (step + 1 < ids.length) {
                            fast.step(List.of(InferenceModel.BatchEntry.of(sf, ids[step])), f);
                            reference.step(List.of(InferenceModel.BatchEntry.of(sr, ids[step])), r);
                        }
                    }
                }
                System.out.printf(Locale.ROOT, "fast vs reference %s %s prompt %d: max |dlogprob| %.3g, per step%s%n",
                        numerics, c.model().getFileName(), c.prompt().length, worst, perStep);
                assertThat(worst).as("max |logprob(fast) - logprob(reference)| over the steps:%s", perStep)
                        .isLessThanOrEqualTo(tolerance);
            }
        }
    }
}
