package aether.serve;

import static org.assertj.core.api.Assertions.assertThat;

import aether.llm.server.InferenceServer;
import aether.llm.server.ServeSettings;
import aether.runtime.testing.SharedData;
import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * {@code serve} end to end with the official OpenAI Node client ({@code openai} on npm, pinned), installed by this test
 * into {@code target/openai-node}. Without npm the test is skipped with a message, except under CI, where it fails.
 */
class OpenAiNodeClientTest {

    static final String OPENAI_NPM = "openai@6.30.1";
    static final String KEY = "node-client-key";

    static String run(List<String> command, Path dir, Map<String, String> env, long timeoutS)
            throws IOException, InterruptedException {
        var pb = new ProcessBuilder(command).directory(dir.toFile()).redirectErrorStream(false);
        pb.environment().putAll(env);
        Process p = pb.start();
        try {
            var stderr = new java.util.concurrent.CompletableFuture<String>();
            Thread.ofVirtual().start(() -> {
                try (InputStream err = p.getErrorStream()) {
                    stderr.complete(new String(err.readAllBytes(), StandardCharsets.UTF_8));
                } catch (IOException e) {
                    stderr.complete(e.toString());
                }
            });
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            assertThat(p.waitFor(timeoutS, TimeUnit.SECONDS)).as("%s finishes", command).isTrue();
            assertThat(p.exitValue()).as("%s failed:\n%s\n%s", command, out, stderr.getNow("")).isZero();
            return out;
        } finally {
            p.destroyForcibly();
        }
    }

    static boolean npmAvailable() {
        try {
            Process p = new ProcessBuilder("npm", "--version").redirectErrorStream(true).start();
            p.getInputStream().readAllBytes();
            return p.waitFor(30, TimeUnit.SECONDS) && p.exitValue() == 0;
        } catch (IOException | InterruptedException e) {
            return false;
        }
    }

    @Test
    @Timeout(300)
    void shouldServeTheOfficialNodeClientStreamingAndWholeChatAndCompletions() throws Exception {
        if (!npmAvailable()) {
            boolean ci = System.getenv("CI") != null && !System.getenv("CI").isBlank()
                    && !System.getenv("CI").equals("false");
            assertThat(ci).as("npm is required under CI for the OpenAI Node client test").isFalse();
            Assumptions.abort("npm not found: skipping the OpenAI Node client end-to-end test (install Node.js + npm)");
        }
        Path dir = Path.of("target", "openai-node").toAbsolutePath();
        Files.createDirectories(dir);
        if (!Files.isDirectory(dir.resolve("node_modules/openai"))) {
            run(List.of("npm", "install", "--no-audit", "--no-fund", "--no-save", "--prefix", dir.toString(),
                    OPENAI_NPM), dir, Map.of(), 240);
        }
        Path script = dir.resolve("openai-client.mjs");
        try (InputStream in = getClass().getResourceAsStream("/serve/openai-client.mjs")) {
            Files.write(script, in.readAllBytes());
        }
        Path model = SharedData.require("models/stories260K.gguf");
        try (var server = InferenceServer.start(new ServeSettings(model, "127.0.0.1", 0, Set.of(KEY), 4, 16, 0, 512,
                4, 64, 0, 64 * 1024, 0, null, null))) {
            String out = run(List.of("node", script.toString()), dir, Map.of(
                    "AETHER_BASE_URL", "http://127.0.0.1:" + server.port() + "/v1",
                    "AETHER_API_KEY", KEY, "AETHER_MODEL", server.modelId()), 120);
            JsonNode r = ServerClient.parse(out.lines().reduce((a, b) -> b).orElseThrow());
            assertThat(r.get("models").get(0).asText()).isEqualTo("stories260K");

            JsonNode chat = r.get("chat");
            JsonNode chatStream = r.get("chatStream");
            assertThat(chat.get("content").asText()).isNotEmpty();
            assertThat(chatStream.get("content").asText()).isEqualTo(chat.get("content").asText());
            assertThat(chatStream.get("finish").asText()).isEqualTo(chat.get("finish").asText());
            assertThat(chatStream.get("usage")).isEqualTo(chat.get("usage"));
            assertThat(chat.get("usage").get("total_tokens").asInt()).isEqualTo(
                    chat.get("usage").get("prompt_tokens").asInt() + chat.get("usage").get("completion_tokens").asInt());
            assertThat(chatStream.get("chunks").asInt()).isGreaterThan(3);

            // the same request through java.net.http gives the same text: both clients see one server truth
            var java = new ServerClient(server.port(), KEY);
            String expected = java.postJson("/v1/completions", "{\"prompt\":\"Once upon a time\",\"max_tokens\":20,"
                    + "\"temperature\":0}").get("choices").get(0).get("text").asText();
            assertThat(r.get("completion").get("text").asText()).isEqualTo(expected);
            assertThat(r.get("completionStream").get("text").asText()).isEqualTo(expected);
            assertThat(r.get("completion").get("usage").get("completion_tokens").asInt()).isEqualTo(20);

            assertThat(r.get("json").get("finish").asText()).isEqualTo("stop");
            assertThat(r.get("json").get("parsedType").asText()).as(r.get("json").toString()).isEqualTo("object");

            // embeddings: base64 (the client's default) decoded by the client = the float response = java.net.http's
            JsonNode emb = r.get("embeddings");
            assertThat(emb.get("object").asText()).isEqualTo("list");
            assertThat(emb.get("model").asText()).isEqualTo(server.modelId());
            assertThat(emb.get("indexes").toString()).isEqualTo("[0,1]");
            int embd = emb.get("dims").get(0).asInt();
            assertThat(emb.get("dims").get(1).asInt()).isEqualTo(embd).isPositive();
            for (JsonNode n : emb.get("norms")) {
                assertThat(n.asDouble()).isCloseTo(1.0, org.assertj.core.api.Assertions.within(1e-5));
            }
            assertThat(emb.get("sameAsFloat").asBoolean()).isTrue();
            int tokens;
            try (var file = aether.llm.gguf.GgufFile.open(model)) {
                var tokenizer = aether.llm.tokenizer.Tokenizer.fromGguf(file.metadata());
                tokens = tokenizer.encode("Once upon a time", true, true).length
                        + tokenizer.encode("The cat sat on the mat", true, true).length;
            }
            assertThat(emb.get("usage").get("prompt_tokens").asInt()).isEqualTo(tokens);
            assertThat(emb.get("usage").get("total_tokens").asInt()).isEqualTo(tokens);
            JsonNode viaJava = java.postJson("/v1/embeddings", "{\"input\":\"Once upon a time\"}").get("data").get(0)
                    .get("embedding");
            for (int i = 0; i < embd; i++) {
                assertThat((float) emb.get("first").get(i).asDouble()).isEqualTo((float) viaJava.get(i).asDouble());
            }
            assertThat(r.get("emptyEmbeddingStatus").asInt()).isEqualTo(400);
            assertThat(r.get("wrongKeyEmbeddingStatus").asInt()).isEqualTo(401);
            // json_schema through the official client, n = 2: each choice parses and validates (networknt)
            JsonNode structured = r.get("jsonSchema");
            var validator = com.networknt.schema.SchemaRegistry.withDefaultDialect(
                    com.networknt.schema.SpecificationVersion.DRAFT_2020_12).getSchema(structured.get("schema"));
            assertThat(structured.get("choices")).hasSize(2);
            for (int i = 0; i < 2; i++) {
                JsonNode c = structured.get("choices").get(i);
                assertThat(c.get("index").asInt()).isEqualTo(i);
                assertThat(c.get("finish").asText()).isEqualTo("stop");
                JsonNode doc = ServerClient.parse(c.get("content").asText());
                assertThat(validator.validate(doc)).as(c.get("content").asText()).isEmpty();
            }
            assertThat(structured.get("usage").get("total_tokens").asInt()).isEqualTo(
                    structured.get("usage").get("prompt_tokens").asInt()
                            + structured.get("usage").get("completion_tokens").asInt());

            assertThat(r.get("wrongKeyStatus").asInt()).isEqualTo(401);
            assertThat(r.get("wrongKeyChatStatus").asInt()).isEqualTo(401);
            assertThat(r.get("badRequestStatus").asInt()).isEqualTo(400);
            assertThat(r.get("unknownModelStatus").asInt()).isEqualTo(404);
        }
    }
}
