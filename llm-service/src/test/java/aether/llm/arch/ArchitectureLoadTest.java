package aether.llm.arch;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import aether.llm.gguf.GgufFile;
import aether.llm.gguf.GgufMetadata;
import aether.llm.gguf.GgufWriter;
import aether.llm.model.ModelConfig;
import aether.llm.model.ModelLoadException;
import aether.runtime.testing.SharedData;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.function.UnaryOperator;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Loading real GGUF files: configs, tied outputs, and the errors for files that cannot run. */
class ArchitectureLoadTest {

    @TempDir
    Path tmp;

    private static Path golden(String file) {
        return SharedData.require("golden/forward/models/" + file);
    }

    /** A copy of {@code source} with its metadata and tensor list edited. */
    private Path copy(Path source, UnaryOperator<GgufMetadata.Builder> metadata,
            UnaryOperator<List<GgufWriter.Tensor>> tensors) throws IOException {
        Path out = tmp.resolve("edited-" + source.getFileName());
        try (GgufFile in = GgufFile.open(source)) {
            GgufWriter.write(out, metadata.apply(in.metadata().toBuilder()).build(),
                    tensors.apply(GgufWriter.tensorsOf(in)));
        }
        return out;
    }

    @Test
    void shouldRejectUnknownArchitectureListingTheSupportedOnes() throws IOException {
        Path file = copy(golden("rand-qwen2-s1-f16.gguf"),
                m -> m.remove("general.architecture").putString("general.architecture", "mamba"), t -> t);
        try (GgufFile gguf = GgufFile.open(file)) {
            assertThatThrownBy(() -> Architecture.load(gguf))
                    .isInstanceOf(ModelLoadException.class)
                    .hasMessageContaining("unsupported architecture 'mamba'")
                    .hasMessageContaining("llama, qwen2, qwen3, phi3, gemma2");
        }
    }

    @Test
    void shouldRejectFileWithoutArchitectureKey() throws IOException {
        Path file = copy(golden("rand-qwen2-s1-f16.gguf"), m -> m.remove("general.architecture"), t -> t);
        try (GgufFile gguf = GgufFile.open(file)) {
            assertThatThrownBy(() -> Architecture.load(gguf))
                    .isInstanceOf(ModelLoadException.class)
                    .hasMessageContaining("general.architecture")
                    .hasMessageContaining("llama, qwen2, qwen3, phi3, gemma2");
        }
    }

    @Test
    void shouldNameMissingTensorAndArchitecture() throws IOException {
        Path file = copy(golden("rand-qwen2-s1-f16.gguf"), m -> m,
                t -> t.stream().filter(x -> !x.name().equals("blk.1.attn_k.bias")).toList());
        try (GgufFile gguf = GgufFile.open(file)) {
            assertThatThrownBy(() -> Architecture.load(gguf))
                    .isInstanceOf(ModelLoadException.class)
                    .hasMessageStartingWith("qwen2: ")
                    .hasMessageContaining("tensor 'blk.1.attn_k.bias' [128] is missing");
        }
    }

    @Test
    void shouldNameMisShapedTensorWithExpectedAndFoundShape() throws IOException {
        Path file = copy(golden("rand-llama-s1-f32.gguf"),
                m -> m.remove("llama.feed_forward_length").putUInt32("llama.feed_forward_length", 256), t -> t);
        try (GgufFile gguf = GgufFile.open(file)) {
            assertThatThrownBy(() -> Architecture.load(gguf))
                    .isInstanceOf(ModelLoadException.class)
                    .hasMessageContaining("tensor 'blk.0.ffn_gate.weight' has ne [256, 512], expected ne [256, 256]");
        }
    }

    @Test
    void shouldNameMissingHyperParameter() throws IOException {
        Path file = copy(golden("rand-phi3-s1-f16.gguf"), m -> m.remove("phi3.block_count"), t -> t);
        try (GgufFile gguf = GgufFile.open(file)) {
            assertThatThrownBy(() -> Architecture.load(gguf))
                    .isInstanceOf(ModelLoadException.class)
                    .hasMessageStartingWith("phi3: ")
                    .hasMessageContaining("phi3.block_count");
        }
    }

    @Test
    void shouldRejectUnsupportedRopeScaling() throws IOException {
        Path file = copy(golden("rand-llama-s1-f32.gguf"), m -> m.putString("llama.rope.scaling.type", "yarn"),
                t -> t);
        try (GgufFile gguf = GgufFile.open(file)) {
            assertThatThrownBy(() -> Architecture.load(gguf))
                    .isInstanceOf(ModelLoadException.class)
                    .hasMessageContaining("llama.rope.scaling.type' is 'yarn'");
        }
    }

    @Test
    void shouldReadLinearRopeScalingAsFrequencyScale() throws IOException {
        Path file = copy(golden("rand-llama-s1-f32.gguf"),
                m -> m.putString("llama.rope.scaling.type", "linear").putFloat32("llama.rope.scaling.factor", 4f),
                t -> t);
        try (GgufFile gguf = GgufFile.open(file)) {
            assertThat(Architecture.load(gguf).config().ropeFreqScale()).isEqualTo(0.25);
        }
    }

    @Test
    void shouldReadStories260KConfigWithLlamaCppDefaults() throws IOException {
        try (GgufFile gguf = GgufFile.open(SharedData.require("models/stories260K.gguf"))) {
            ModelConfig c = Architecture.load(gguf).config();
            // no vocab_size, key_length or freq_base keys: vocab from the token list, head size n_embd / n_head
            assertThat(c).isEqualTo(new ModelConfig("llama", 512, 64, 5, 172, 8, 4, 8, 8, 8, 10000.0, 1.0,
                    (float) 1e-5, 2048, 0, 0, 0));
        }
    }

    @Test
    void shouldReadGemma2SoftCapsAndSlidingWindow() throws IOException {
        try (GgufFile gguf = GgufFile.open(golden("rand-gemma2-swa-s1-f16.gguf"))) {
            Architecture a = Architecture.load(gguf);
            assertThat(a).isInstanceOf(Gemma2Architecture.class);
            assertThat(a.config().slidingWindow()).isEqualTo(8);
            assertThat(a.config().attentionSoftCap()).isEqualTo(10.0);
            assertThat(a.config().finalSoftCap()).isEqualTo(30.0);
        }
    }

    @Test
    void shouldRejectBatchPastTheContextLength() throws IOException {
        try (GgufFile gguf = GgufFile.open(golden("rand-llama-s1-f32.gguf"))) {
            Architecture a = Architecture.load(gguf);
            assertThatThrownBy(() -> a.buildForward(2, 2047, Numerics.FLOAT32))
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("context length 2048");
            assertThatThrownBy(() -> a.buildForward(0, 0, Numerics.FLOAT32))
                    .isInstanceOf(IllegalArgumentException.class);
        }
    }
}
