package aether.llm.gguf;

import static org.assertj.core.api.Assertions.assertThat;

import aether.runtime.tensor.GgmlType;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ModelSummaryTest {

    @TempDir
    Path temp;

    @Test
    void shouldHumanizeCountsToThreeSignificantDigits() {
        assertThat(ModelSummary.humanCount(999)).isEqualTo("999");
        assertThat(ModelSummary.humanCount(1_500)).isEqualTo("1.50K");
        assertThat(ModelSummary.humanCount(260_000)).isEqualTo("260K");
        assertThat(ModelSummary.humanCount(999_999)).isEqualTo("1.00M");
        assertThat(ModelSummary.humanCount(1_235_814_400L)).isEqualTo("1.24B");
        assertThat(ModelSummary.humanCount(70_553_706_496L)).isEqualTo("70.6B");
        assertThat(ModelSummary.humanBytes(1_185_376)).isEqualTo("1.13 MiB");
        assertThat(ModelSummary.humanBytes(100)).isEqualTo("100 B");
    }

    @Test
    void shouldSummarizeAQuantizedModelWrittenByTheWriter() throws IOException {
        GgufMetadata md = GgufMetadata.builder()
                .putString("general.architecture", "qwen2")
                .putString("general.name", "tiny")
                .putUInt32("general.file_type", 2)
                .putUInt32("qwen2.block_count", 3)
                .putUInt32("qwen2.context_length", 4096)
                .putUInt32("qwen2.embedding_length", 64)
                .putUInt32("qwen2.feed_forward_length", 128)
                .putArray("qwen2.attention.head_count", GgufArray.ofInt32(4, 8, 4))
                .putUInt32("qwen2.attention.head_count_kv", 2)
                .putFloat32("qwen2.rope.freq_base", 1_000_000f)
                .putString("qwen2.rope.scaling.type", "yarn")
                .putFloat32("qwen2.rope.scaling.factor", 4f)
                .putString("tokenizer.ggml.model", "gpt2")
                .putString("tokenizer.ggml.pre", "qwen2")
                .putArray("tokenizer.ggml.tokens", GgufArray.ofStrings(List.of("a", "b", "<|endoftext|>")))
                .putUInt32("tokenizer.ggml.eos_token_id", 2)
                .putUInt32("tokenizer.ggml.bos_token_id", 7)
                .putString("tokenizer.chat_template", "{{ messages }}")
                .build();
        var tensors = List.of(
                new GgufWriter.Tensor("w", GgmlType.Q4_0, new long[] {64, 3}, TensorSource.of(MemorySegment.ofArray(new byte[18 * 2 * 3]))),
                new GgufWriter.Tensor("n", GgmlType.F32, new long[] {64}, TensorSource.of(MemorySegment.ofArray(new byte[256]))));
        Path file = temp.resolve("tiny.gguf");
        GgufWriter.write(file, md, tensors);
        try (GgufFile f = GgufFile.open(file)) {
            ModelSummary s = ModelSummary.of(f);
            assertThat(s.architecture()).isEqualTo("qwen2");
            assertThat(s.fileType()).isEqualTo("MOSTLY_Q4_0");
            assertThat(s.parameterCount()).isEqualTo(64 * 3 + 64);
            // Most frequent first; ties in ggml's type order.
            assertThat(s.tensorTypes()).containsExactly(java.util.Map.entry("F32", 1), java.util.Map.entry("Q4_0", 1));
            assertThat(s.blockCount()).isEqualTo(3);
            assertThat(s.headCount()).isEqualTo(8); // per-layer array: the largest
            assertThat(s.headDim()).isEqualTo(8);
            assertThat(s.rope()).isEqualTo(new ModelSummary.Rope(1_000_000.0, null, "yarn", 4.0));
            assertThat(s.tokenizer().vocabSize()).isEqualTo(3);
            assertThat(s.tokenizer().pre()).isEqualTo("qwen2");
            assertThat(s.tokenizer().specialTokens()).containsExactly(
                    new ModelSummary.SpecialToken("bos", 7, null),
                    new ModelSummary.SpecialToken("eos", 2, "<|endoftext|>"));
            assertThat(s.chatTemplateChars()).isEqualTo(14);
            assertThat(s.fileSizeBytes()).isEqualTo(Files.size(file));
        }
    }
}
