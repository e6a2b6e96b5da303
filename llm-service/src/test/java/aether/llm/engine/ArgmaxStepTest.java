package aether.llm.engine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import aether.llm.engine.InferenceModel.BatchEntry;
import aether.llm.sampling.Argmax;
import aether.runtime.testing.SharedData;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * {@link InferenceModel#step(List, float[], boolean[], int[])}'s default on the CPU engine: the same step as {@link
 * InferenceModel#step(List, float[])} (two models fed the same batches stay in lockstep), wanted rows get the same
 * logits, the others their argmax.
 */
class ArgmaxStepTest {

    @Test
    @Timeout(120)
    void argmaxRowsMatchTheHostArgmaxOfTheNormalStepsLogits() {
        Path path = SharedData.require("models/stories260K.gguf");
        var options = EngineOptions.DEFAULTS.withContextSize(128).withMaxSequences(8);
        try (LoadedModel a = LoadedModel.open(path, options); LoadedModel b = LoadedModel.open(path, options)) {
            InferenceModel viaArgmax = a.model(), normal = b.model();
            int vocab = normal.config().vocabSize(), n = 8;
            SplittableRandom r = new SplittableRandom(5);
            List<Sequence> sa = new ArrayList<>(), sb = new ArrayList<>();
            int[][] next = new int[n][];
            for (int i = 0; i < n; i++) {
                sa.add(viaArgmax.newSequence());
                sb.add(normal.newSequence());
                next[i] = r.ints(1 + r.nextInt(6), 0, vocab).toArray();   // prompts of 1..6 tokens
            }
            float[] la = new float[n * vocab], lb = new float[n * vocab];
            boolean[] wanted = new boolean[n];
            int[] argmax = new int[n];
            for (int step = 0; step < 6; step++) {
                List<BatchEntry> ba = new ArrayList<>(), bb = new ArrayList<>();
                for (int i = 0; i < n; i++) {
                    ba.add(BatchEntry.of(sa.get(i), next[i]));
                    bb.add(BatchEntry.of(sb.get(i), next[i]));
                    wanted[i] = r.nextInt(3) == 0;
                }
                Arrays.fill(argmax, -7);
                viaArgmax.step(ba, la, wanted, argmax);
                normal.step(bb, lb);
                for (int i = 0; i < n; i++) {
                    int expected = Argmax.first(lb, i * vocab, vocab);
                    if (wanted[i]) {
                        assertThat(Arrays.copyOfRange(la, i * vocab, (i + 1) * vocab)).as("step %d row %d", step, i)
                                .containsExactly(Arrays.copyOfRange(lb, i * vocab, (i + 1) * vocab));
                    } else {
                        assertThat(argmax[i]).as("step %d row %d", step, i).isEqualTo(expected);
                    }
                    next[i] = new int[] {expected};   // greedy continuation for both models
                }
            }
            List<BatchEntry> one = List.of(BatchEntry.of(sa.getFirst(), 1), BatchEntry.of(sa.get(1), 1));
            assertThatThrownBy(() -> viaArgmax.step(one, la, new boolean[1], new int[2]))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("logitsWanted of 1");
            assertThatThrownBy(() -> viaArgmax.step(one, la, new boolean[2], new int[1]))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("argmaxOut of 1");
            sa.forEach(Sequence::close);
            sb.forEach(Sequence::close);
        }
    }
}
