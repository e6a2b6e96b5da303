package aether.llm.gguf;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.io.TempDir;

class GgufRoundTripTest {

    @TempDir
    Path temp;

    @TestFactory
    List<DynamicTest> shouldRewriteEveryRealFileByteForByte() {
        return RealGgufFiles.all().stream()
                .map(file -> DynamicTest.dynamicTest(file.getFileName().toString(), () -> assertRewritesIdentically(file)))
                .toList();
    }

    private void assertRewritesIdentically(Path file) throws IOException {
        Path copy = temp.resolve("copy-" + file.getFileName());
        long written;
        String sha;
        try (GgufFile gguf = GgufFile.open(file)) {
            written = GgufWriter.write(copy, gguf.metadata(), GgufWriter.tensorsOf(gguf),
                    GgufWriter.Options.matching(gguf));
            sha = gguf.dataSha256();
        }
        assertThat(written).isEqualTo(Files.size(file));
        assertThat(Files.mismatch(file, copy)).as("first differing byte").isEqualTo(-1L);
        try (GgufFile reread = GgufFile.open(copy)) {
            assertThat(reread.dataSha256()).isEqualTo(sha);
        }
    }

    @Test
    void shouldKeepMetadataTypesAndOrderWhenRebuiltThroughTheBuilder() throws IOException {
        Path copy = temp.resolve("rebuilt.gguf");
        try (GgufFile gguf = GgufFile.open(RealGgufFiles.stories260K())) {
            GgufMetadata rebuilt = gguf.metadata().toBuilder().build();
            GgufWriter.write(copy, rebuilt, GgufWriter.tensorsOf(gguf), GgufWriter.Options.matching(gguf));
            try (GgufFile reread = GgufFile.open(copy)) {
                assertThat(reread.metadata().asMap()).containsExactlyEntriesOf(gguf.metadata().asMap());
                assertThat(reread.tensors()).containsExactlyElementsOf(gguf.tensors());
            }
        }
        assertThat(Files.mismatch(RealGgufFiles.stories260K(), copy)).isEqualTo(-1L);
    }
}
