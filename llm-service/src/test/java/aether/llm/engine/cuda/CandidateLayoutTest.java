package aether.llm.engine.cuda;

import static org.assertj.core.api.Assertions.assertThat;

import aether.device.cuda.CudaKernels;
import aether.llm.sampling.Candidates;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/**
 * The three places that fix the candidates' layout agree, without a GPU: the kernel's {@code CAND_K} and {@code
 * CAND_STRIDE} (candidates.cuh), {@link CudaKernels#CANDIDATES_K} and {@link CudaKernels#CANDIDATE_WORDS}, and {@link
 * Candidates#K} and {@link Candidates#DEVICE_WORDS} (the host reader); the header words, the draw's margin and the
 * block's warps (on which the draw's summation order, repeated by {@link Candidates#computeOnHost}, depends).
 */
class CandidateLayoutTest {

    @Test
    void kernelJavaAndHostReaderAgree() throws IOException {
        assertThat(CudaKernels.CANDIDATES_K).isEqualTo(Candidates.K);
        assertThat(CudaKernels.CANDIDATE_WORDS).isEqualTo(Candidates.DEVICE_WORDS).isEqualTo(2 * Candidates.K + 12);
        assertThat(CudaKernels.CANDIDATES_WARPS).as("the draw's summation order").isEqualTo(Candidates.DRAW_WARPS);
        Path source = Path.of("../device-workers/src/main/cuda/candidates.cuh");
        String cuh = Files.readString(source);
        Matcher k = Pattern.compile("#define CAND_K (\\d+)").matcher(cuh);
        assertThat(k.find()).as("CAND_K in %s", source).isTrue();
        assertThat(Integer.parseInt(k.group(1))).isEqualTo(Candidates.K);
        assertThat(cuh).contains("#define CAND_STRIDE (2 * CAND_K + 12)")
                .contains("#define CAND_HEADER " + CudaKernels.ADJUST_HEADER_WORDS);
        Matcher margin = Pattern.compile("#define CAND_DRAW_MARGIN (\\S+)").matcher(cuh);
        assertThat(margin.find()).as("CAND_DRAW_MARGIN in %s", source).isTrue();
        assertThat(Double.parseDouble(margin.group(1))).isEqualTo(Candidates.DRAW_MARGIN);
    }
}
