package aether.llm.engine.cuda;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;

/**
 * {@link CudaInferenceModel#reportFlagged}, the host side of a row argmax_rows flags (-1, its logits copied out): the
 * error of the host path, naming the token; entries whose logits were wanted or whose argmax came back are left alone.
 */
class FlaggedArgmaxTest {

    @Test
    void aFlaggedRowRaisesTheHostPathsErrorAndOthersAreUntouched() {
        int vocab = 4;
        float[] logits = {0, 0, 0, 0, 1f, 2f, 3f, 0, 5f, 1f, Float.NaN, 0};
        boolean[] wanted = {true, false, false};
        int[] argmax = {-1, 3, -1};   // row 0 wanted (its value unspecified), row 1 from the device, row 2 flagged
        assertThatThrownBy(() -> CudaInferenceModel.reportFlagged(3, vocab, logits, wanted, argmax))
                .isInstanceOf(IllegalStateException.class).hasMessage("logit of token 2 is NaN");
        float[] banned = {Float.NEGATIVE_INFINITY, Float.NEGATIVE_INFINITY};
        assertThatThrownBy(() -> CudaInferenceModel.reportFlagged(1, 2, banned, new boolean[1], new int[] {-1}))
                .isInstanceOf(IllegalStateException.class).hasMessageContaining("every candidate token");
        int[] fine = {-1, 3, -1};
        float[] clean = {0, 0, 0, 0, 1f, 2f, 3f, 0, 5f, 5f, 1f, 0};
        CudaInferenceModel.reportFlagged(3, vocab, clean, wanted, fine);
        assertThat(fine).as("a row the kernel flagged wrongly gets the host's argmax").containsExactly(-1, 3, 0);
    }
}
