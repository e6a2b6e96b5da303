package aether.llm.synth;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import aether.llm.gguf.GgufFile;
import aether.llm.gguf.TensorInfo;
import aether.runtime.quant.BlockCodecs;
import aether.runtime.tensor.GgmlType;
import aether.runtime.testing.SharedData;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SyntheticModelTest {

    @TempDir
    Path dir;

    /** Small enough to write in well under a second, big enough for several chunks per tensor. */
    static SynthSpec small(GgmlType type, long seed) {
        return new SynthSpec("synth-test", 2, 256, 512, 4, 2, 512, 10000f, 1e-5f, type, seed);
    }

    static Path vocab() {
        return SharedData.require("models/vocab/ggml-vocab-llama-spm.gguf");
    }

    @Test
    void shouldWriteALlamaFileThatReadsBackWithThePlannedTensorsAndTheVocabsTokenizer() throws IOException {
        SyntheticModel model = SyntheticModel.of(small(GgmlType.Q4_0, 7), vocab());
        Path file = dir.resolve("m.gguf");
        model.write(file, 2, done -> {});
        try (GgufFile gguf = GgufFile.open(file); GgufFile source = GgufFile.open(vocab())) {
            assertThat(gguf.metadata().requireString("general.architecture")).isEqualTo("llama");
            assertThat(gguf.metadata().requireInt("llama.block_count")).isEqualTo(2);
            assertThat(gguf.metadata().requireInt("llama.attention.head_count_kv")).isEqualTo(2);
            assertThat(gguf.metadata().requireInt("llama.rope.dimension_count")).isEqualTo(64);
            assertThat(gguf.metadata().requireInt("general.file_type")).isEqualTo(2);
            List<String> tokens = gguf.metadata().requireStringArray("tokenizer.ggml.tokens");
            assertThat(tokens).isEqualTo(source.metadata().requireStringArray("tokenizer.ggml.tokens"));
            for (String key : source.metadata().keys()) {
                if (key.startsWith("tokenizer.")) {
                    assertThat(gguf.metadata().require(key)).as(key).isEqualTo(source.metadata().require(key));
                }
            }
            assertThat(gguf.tensors()).hasSize(model.tensors().size()).hasSize(1 + 2 * 9 + 2);
            for (int i = 0; i < gguf.tensors().size(); i++) {
                TensorInfo t = gguf.tensors().get(i);
                SyntheticModel.PlannedTensor p = model.tensors().get(i);
                assertThat(t.name()).isEqualTo(p.name());
                assertThat(t.shape()).isEqualTo(p.ne());
                assertThat(t.type()).isEqualTo(p.type());
            }
            assertThat(gguf.tensor("token_embd.weight").orElseThrow().shape()).containsExactly(256, tokens.size());
            assertThat(gguf.tensor("blk.1.attn_k.weight").orElseThrow().shape()).containsExactly(256, 128);
            assertThat(gguf.tensors().stream().mapToLong(TensorInfo::sizeBytes).sum()).isEqualTo(model.tensorBytes());
        }
    }

    @Test
    void shouldDrawWeightsAndNormsFromTheStatedDistributions() throws IOException {
        SyntheticModel model = SyntheticModel.of(small(GgmlType.Q8_0, 3), vocab());
        Path file = dir.resolve("m.gguf");
        model.write(file, 2, done -> {});
        try (GgufFile gguf = GgufFile.open(file)) {
            float[] w = dequantized(gguf, "blk.0.ffn_down.weight");
            assertThat(mean(w)).isCloseTo(0, org.assertj.core.data.Offset.offset(0.001));
            assertThat(std(w)).isCloseTo(SyntheticModel.WEIGHT_STD, org.assertj.core.data.Offset.offset(0.001));
            float[] norm = dequantized(gguf, "blk.1.ffn_norm.weight");
            assertThat(mean(norm)).isCloseTo(1, org.assertj.core.data.Offset.offset(0.02));
            assertThat(std(norm)).isCloseTo(SyntheticModel.NORM_STD, org.assertj.core.data.Offset.offset(0.02));
            // different tensors come from different streams
            assertThat(dequantized(gguf, "blk.0.ffn_gate.weight")).isNotEqualTo(dequantized(gguf, "blk.0.ffn_up.weight"));
        }
    }

    @Test
    void shouldGiveTheSameBytesForASeedWhateverTheThreadCountAndOtherBytesForAnotherSeed() throws Exception {
        Path a = dir.resolve("a.gguf"), b = dir.resolve("b.gguf"), c = dir.resolve("c.gguf");
        SyntheticModel.of(small(GgmlType.Q4_K, 11), vocab()).write(a, 1, done -> {});
        SyntheticModel.of(small(GgmlType.Q4_K, 11), vocab()).write(b, 3, done -> {});
        SyntheticModel.of(small(GgmlType.Q4_K, 12), vocab()).write(c, 2, done -> {});
        assertThat(sha256(a)).isEqualTo(sha256(b)).isNotEqualTo(sha256(c));
    }

    @Test
    void shouldNameTheFieldOfAnInvalidShape() {
        assertThatThrownBy(() -> small(GgmlType.Q4_0, 1).withType(GgmlType.Q4_K).withSeed(1)
                .preset("2b", GgmlType.Q4_0, 1)).hasMessageContaining("preset: 2b");
        assertThatThrownBy(() -> new SynthSpec("x", 1, 100, 512, 4, 2, 512, 1e4f, 1e-5f, GgmlType.Q4_0, 1))
                .hasMessageContaining("Q4_0").hasMessageContaining("100");
        assertThatThrownBy(() -> new SynthSpec("x", 1, 256, 512, 4, 3, 512, 1e4f, 1e-5f, GgmlType.F16, 1))
                .hasMessageContaining("kv-heads: 3");
    }

    private static float[] dequantized(GgufFile gguf, String name) {
        TensorInfo t = gguf.tensor(name).orElseThrow();
        return BlockCodecs.dequantize(t.type(), gguf.tensorData(t), 0, t.elementCount());
    }

    private static double mean(float[] v) {
        double s = 0;
        for (float x : v) {
            s += x;
        }
        return s / v.length;
    }

    private static double std(float[] v) {
        double m = mean(v), s = 0;
        for (float x : v) {
            s += (x - m) * (x - m);
        }
        return Math.sqrt(s / v.length);
    }

    private static String sha256(Path p) throws IOException, NoSuchAlgorithmException {
        return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(p)));
    }
}
