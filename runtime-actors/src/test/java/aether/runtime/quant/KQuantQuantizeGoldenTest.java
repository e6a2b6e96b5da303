package aether.runtime.quant;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;

/**
 * Quantizes the F32 source tensors of the golden model with our port of llama.cpp's reference quantizers and compares
 * with the bytes llama-quantize wrote into each K-quant variant (no imatrix, so llama-quantize ran the same
 * {@code quantize_row_*_ref} functions). Every K-quant tensor of every variant that has an F32 source is checked,
 * not only the two chosen tensors.
 */
class KQuantQuantizeGoldenTest {

    @TestFactory
    List<DynamicTest> shouldReproduceLlamaQuantizeBytesForEveryKQuantTensor() {
        KQuantGolden golden = KQuantGolden.load();
        String sourceFile = golden.index.get("source").get("file").asText();
        List<DynamicTest> tests = new ArrayList<>();
        for (JsonNode variant : golden.index.get("variants")) {
            String file = variant.get("file").asText();
            for (JsonNode tensor : variant.get("tensors")) {
                String type = tensor.get("ggml_type").asText();
                BlockCodec codec = KQuantGolden.CODECS.get(type);
                JsonNode source = golden.sourceTensor(tensor.get("name").asText());
                if (codec == null || source == null || !source.get("ggml_type").asText().equals("F32")) {
                    continue;
                }
                String name = file + " " + tensor.get("name").asText() + " (" + type + ")";
                tests.add(DynamicTest.dynamicTest(name, () -> {
                    int count = Math.toIntExact(KQuantGolden.elements(source));
                    float[] x = golden.floats(sourceFile, source.get("data_offset").asLong(), count);
                    byte[] theirs = golden.bytes(file, tensor.get("data_offset").asLong(), tensor.get("n_bytes").asInt());
                    byte[] ours = new byte[theirs.length];
                    codec.quantize(x, 0, count, MemorySegment.ofArray(ours), 0);

                    double ourRmse = rmse(x, KQuantDequantizeGoldenTest.dequantize(codec, MemorySegment.ofArray(ours), count));
                    double theirRmse = rmse(x, KQuantDequantizeGoldenTest.dequantize(codec, MemorySegment.ofArray(theirs), count));
                    int blockBytes = codec.type().blockBytes();
                    int differing = 0;
                    for (int b = 0; b < theirs.length / blockBytes; b++) {
                        if (!Arrays.equals(ours, b * blockBytes, (b + 1) * blockBytes, theirs, b * blockBytes, (b + 1) * blockBytes)) {
                            differing++;
                        }
                    }
                    int blocks = theirs.length / blockBytes;
                    // Our RMSE bound holds even where bytes differ; identity is the stronger check and holds for all
                    // golden tensors because both sides run the same float operations in the same order.
                    assertThat(ourRmse).as("%s: RMSE vs source, ours %.9g vs llama.cpp's %.9g", name, ourRmse, theirRmse)
                            .isLessThanOrEqualTo(theirRmse * (1 + 1e-6));
                    assertThat(differing).as("%s: blocks differing from llama-quantize's, of %d", name, blocks).isZero();
                }));
            }
        }
        return tests;
    }

    @Test
    void shouldUseTheSameSourceRowsAsTheReferenceQuantizerFiles() {
        KQuantGolden golden = KQuantGolden.load();
        String sourceFile = golden.index.get("source").get("file").asText();
        int checked = 0;
        for (JsonNode ref : golden.index.get("reference_quantizer")) {
            JsonNode source = golden.sourceTensor(ref.get("tensor").asText());
            float[] fromRef = golden.floatFile(ref.get("source_f32_file").asText());
            float[] fromModel = golden.floats(sourceFile, source.get("data_offset").asLong(),
                    Math.toIntExact(KQuantGolden.elements(source)));
            assertThat(fromModel).as(ref.get("source_f32_file").asText()).isEqualTo(fromRef);
            checked++;
        }
        assertThat(checked).isPositive();
    }

    static double rmse(float[] x, float[] y) {
        double s = 0;
        for (int i = 0; i < x.length; i++) {
            double d = (double) x[i] - y[i];
            s += d * d;
        }
        return Math.sqrt(s / x.length);
    }
}
