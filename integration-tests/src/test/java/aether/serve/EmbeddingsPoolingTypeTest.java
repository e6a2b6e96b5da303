package aether.serve;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import aether.llm.engine.EngineOptions;
import aether.llm.engine.InferenceModel;
import aether.llm.engine.InferenceModel.BatchEntry;
import aether.llm.engine.LoadedModel;
import aether.llm.engine.Pooling;
import aether.llm.engine.Sequence;
import aether.llm.gguf.GgufFile;
import aether.llm.gguf.GgufWriter;
import aether.llm.server.InferenceServer;
import aether.llm.server.ServeSettings;
import aether.runtime.testing.SharedData;
import com.fasterxml.jackson.databind.JsonNode;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The server honours a model's {@code <arch>.pooling_type}: stories260K rewritten with each value, against the
 * normalised first / last final hidden state computed over the engine contract; {@code none} is refused.
 */
class EmbeddingsPoolingTypeTest {

    @TempDir
    static Path temp;

    static Path withPooling(Path model, long type) throws Exception {
        Path out = temp.resolve("stories260K-pool" + type + ".gguf");
        try (GgufFile file = GgufFile.open(model)) {
            GgufWriter.write(out, file.metadata().toBuilder().putUInt32("llama.pooling_type", type).build(),
                    GgufWriter.tensorsOf(file));
        }
        return out;
    }

    static InferenceServer serve(Path model) {
        return InferenceServer.start(new ServeSettings(model, "127.0.0.1", 0, Set.of(), 2, 4, 0, 256, 2, 32, 0,
                1 << 20, 0, null, "m"));
    }

    /** The normalised hidden row {@code row} of {@code ids} (the whole input in one step). */
    static double[] row(LoadedModel m, int[] ids, int row) {
        InferenceModel model = m.model();
        int e = model.config().embeddingLength();
        float[] h = new float[ids.length * e];
        try (Sequence s = model.newSequence()) {
            model.step(List.of(BatchEntry.of(s, ids)), InferenceModel.Output.ALL_HIDDEN, h);
        }
        double n = 0;
        for (int i = 0; i < e; i++) {
            n += (double) h[row * e + i] * h[row * e + i];
        }
        double[] v = new double[e];
        for (int i = 0; i < e; i++) {
            v[i] = h[row * e + i] / Math.sqrt(n);
        }
        return v;
    }

    static JsonNode embed(InferenceServer s, String body) {
        HttpResponse<String> r = new ServerClient(s.port(), null).post("/v1/embeddings", body);
        assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
        return ServerClient.parse(r.body()).get("data");
    }

    @Test
    @Timeout(120)
    void shouldPoolAsTheModelFileSays() throws Exception {
        Path model = SharedData.require("models/stories260K.gguf");
        String[] texts = {"Once upon a time", "The cat sat on the mat"};
        try (LoadedModel reference = LoadedModel.open(model, EngineOptions.DEFAULTS.withContextSize(256))) {
            try (var last = serve(withPooling(model, 3))) {
                assertThat(last.pooling()).isEqualTo(Pooling.LAST);
                JsonNode data = embed(last, "{\"input\":[\"" + texts[0] + "\",\"" + texts[1] + "\"]}");
                for (int k = 0; k < 2; k++) {
                    int[] ids = reference.tokenizer().encode(texts[k], true, true);
                    double[] want = row(reference, ids, ids.length - 1);
                    for (int i = 0; i < want.length; i++) {
                        assertThat(data.get(k).get("embedding").get(i).asDouble()).isCloseTo(want[i], within(5e-4));
                    }
                }
            }
            try (var cls = serve(withPooling(model, 2))) {
                assertThat(cls.pooling()).isEqualTo(Pooling.CLS);
                JsonNode data = embed(cls, "{\"input\":[\"" + texts[0] + "\",\"" + texts[1] + "\"]}");
                // a causal model's first position sees only itself: every input starting with BOS gets BOS's state
                int[] ids = reference.tokenizer().encode(texts[1], true, true);
                double[] want = row(reference, ids, 0);
                for (int i = 0; i < want.length; i++) {
                    assertThat(data.get(0).get("embedding").get(i).asDouble()).isCloseTo(want[i], within(5e-4));
                    assertThat(data.get(1).get("embedding").get(i).asDouble()).isCloseTo(want[i], within(5e-4));
                }
            }
            try (var none = serve(withPooling(model, 0))) {
                HttpResponse<String> r = new ServerClient(none.port(), null)
                        .post("/v1/embeddings", "{\"input\":\"x\"}");
                assertThat(r.statusCode()).isEqualTo(400);
                JsonNode err = ServerClient.parse(r.body()).get("error");
                assertThat(err.get("param").asText()).isEqualTo("model");
                assertThat(err.get("message").asText()).contains("'none'").contains("one vector per token");
                // generation on that model is unaffected
                assertThat(new ServerClient(none.port(), null).post("/v1/completions",
                        "{\"prompt\":\"x\",\"max_tokens\":2}").statusCode()).isEqualTo(200);
            }
        }
    }
}
