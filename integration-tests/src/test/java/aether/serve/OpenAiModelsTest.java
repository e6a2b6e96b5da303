package aether.serve;

import static org.assertj.core.api.Assertions.assertThat;

import aether.llm.server.InferenceServer;
import aether.llm.server.ServeSettings;
import aether.runtime.testing.SharedData;
import com.fasterxml.jackson.databind.JsonNode;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** {@code GET /v1/models} and {@code GET /v1/models/{id}}: OpenAI's model object with the context length and meta. */
class OpenAiModelsTest {

    @Test
    @Timeout(60)
    void shouldDescribeTheServedModelInTheListAndByItsId() throws Exception {
        Path model = SharedData.require("models/stories260K.gguf");
        long trainContext;
        try (var file = aether.llm.gguf.GgufFile.open(model)) {
            trainContext = file.metadata().requireLong("llama.context_length");
        }
        try (var server = InferenceServer.start(new ServeSettings(model, "127.0.0.1", 0, Set.of("k"), 2, 4, 0, 200, 2,
                32, 0, 1 << 20, 0, null, null))) {
            var client = new ServerClient(server.port(), "k");
            JsonNode list = ServerClient.parse(client.get("/v1/models").body());
            assertThat(list.get("object").asText()).isEqualTo("list");
            JsonNode m = list.get("data").get(0);
            assertThat(m.get("id").asText()).isEqualTo("stories260K");
            assertThat(m.get("object").asText()).isEqualTo("model");
            assertThat(m.get("owned_by").asText()).isEqualTo("aether");   // the file names no organization
            assertThat(m.get("created").asLong()).isPositive();
            assertThat(m.get("context_length").asInt()).isEqualTo(200).isEqualTo(server.contextSize());
            JsonNode meta = m.get("meta");
            assertThat(meta.get("architecture").asText()).isEqualTo("llama");
            assertThat(meta.get("n_ctx_train").asLong()).isEqualTo(trainContext).isGreaterThan(200);
            assertThat(meta.get("n_embd").asInt()).isEqualTo(64);
            assertThat(meta.get("n_vocab").asInt()).isEqualTo(512);
            assertThat(meta.get("n_params").asLong()).isBetween(200_000L, 400_000L);
            assertThat(meta.get("pooling").asText()).isEqualTo("mean");

            HttpResponse<String> one = client.get("/v1/models/stories260K");
            assertThat(one.statusCode()).isEqualTo(200);
            assertThat(ServerClient.parse(one.body())).isEqualTo(m);
            HttpResponse<String> missing = client.get("/v1/models/gpt-4");
            assertThat(missing.statusCode()).isEqualTo(404);
            JsonNode err = ServerClient.parse(missing.body()).get("error");
            assertThat(err.get("code").asText()).isEqualTo("model_not_found");
            assertThat(err.get("message").asText()).contains("gpt-4").contains("stories260K");
            assertThat(client.withKey(null).get("/v1/models/stories260K").statusCode()).isEqualTo(401);
            assertThat(client.post("/v1/models/stories260K", "{}").statusCode()).isEqualTo(405);
            assertThat(client.get("/metrics").body()).containsPattern(
                    "aether_requests_total\\{endpoint=\"models\",status=\"404\"} 1");
        }
    }
}
