package aether.runtime.quant;

import static org.assertj.core.api.Assertions.assertThat;

import aether.runtime.testing.SharedData;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.util.Map;

/** Reads llama.cpp's quantization goldens (shared/golden/quant): the index, raw tensor bytes and f32 arrays. */
final class KQuantGolden {

    /** The K-quant codecs under test by ggml type name, as the index spells it. */
    static final Map<String, BlockCodec> CODECS = Map.of(
            "Q2_K", new Q2_KCodec(),
            "Q3_K", new Q3_KCodec(),
            "Q4_K", new Q4_KCodec(false),
            "Q5_K", new Q5_KCodec(false),
            "Q6_K", new Q6_KCodec(false));

    /** The vector-path twins of the codecs that have one. */
    static final Map<String, BlockCodec> VECTOR_CODECS = Map.of(
            "Q4_K", new Q4_KCodec(true),
            "Q5_K", new Q5_KCodec(true),
            "Q6_K", new Q6_KCodec(true));

    final Path dir;
    final JsonNode index;

    private KQuantGolden(Path indexFile) {
        this.dir = indexFile.getParent();
        try {
            this.index = new ObjectMapper().readTree(indexFile.toFile());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static KQuantGolden load() {
        return new KQuantGolden(SharedData.require("golden/quant/index.json"));
    }

    byte[] bytes(String relativeFile, long offset, int n) {
        Path file = dir.resolve(relativeFile);
        try (FileChannel ch = FileChannel.open(file)) {
            assertThat(offset + n).as("%s: bytes %d..%d within the file", file, offset, offset + n)
                    .isLessThanOrEqualTo(ch.size());
            ByteBuffer buf = ByteBuffer.allocate(n);
            while (buf.hasRemaining()) {
                int r = ch.read(buf, offset + buf.position());
                if (r < 0) {
                    throw new IOException(file + ": unexpected end of file at " + (offset + buf.position()));
                }
            }
            return buf.array();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    float[] floats(String relativeFile, long offset, int count) {
        byte[] raw = bytes(relativeFile, offset, Math.multiplyExact(count, Float.BYTES));
        float[] out = new float[count];
        ByteBuffer.wrap(raw).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(out);
        return out;
    }

    float[] floatFile(String relativeFile) {
        long size = dir.resolve(relativeFile).toFile().length();
        return floats(relativeFile, 0, Math.toIntExact(size / Float.BYTES));
    }

    /** The F32 source tensor of the given name in the unquantized model, or null if it has none. */
    JsonNode sourceTensor(String name) {
        for (JsonNode t : index.get("source").get("tensors")) {
            if (t.get("name").asText().equals(name)) {
                return t;
            }
        }
        return null;
    }

    static long elements(JsonNode tensor) {
        long n = 1;
        for (JsonNode d : tensor.get("ne")) {
            n = Math.multiplyExact(n, d.asLong());
        }
        return n;
    }
}
