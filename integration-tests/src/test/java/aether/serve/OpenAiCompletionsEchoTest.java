package aether.serve;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import aether.llm.engine.EngineOptions;
import aether.llm.engine.InferenceModel;
import aether.llm.engine.InferenceModel.BatchEntry;
import aether.llm.engine.LoadedModel;
import aether.llm.engine.Sequence;
import aether.llm.server.InferenceServer;
import aether.llm.server.ServeSettings;
import aether.runtime.testing.SharedData;
import com.fasterxml.jackson.databind.JsonNode;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * {@code /v1/completions} with {@code echo}, alone and with {@code logprobs} (the prompt's own token log-probabilities,
 * as OpenAI's legacy API returns them: the first token's null), streamed and whole, for every prompt form; and the
 * fields this server refuses with a 400 naming them.
 */
class OpenAiCompletionsEchoTest {

    static final String KEY = "echo-key";
    /** The server scores prompts in chunks over an f16 KV cache; the reference runs one step: float/f16 rounding. */
    static final double LOGPROB_TOLERANCE = 5e-3;

    static InferenceServer server;
    static ServerClient client;
    static LoadedModel reference;

    @BeforeAll
    static void start() {
        Path model = SharedData.require("models/stories260K.gguf");
        // batch 8: prompts are scored in several chunks
        server = InferenceServer.start(new ServeSettings(model, "127.0.0.1", 0, Set.of(KEY), 4, 16, 0, 512, 4, 8, 0,
                1 << 20, 0, null, null));
        client = new ServerClient(server.port(), KEY);
        reference = LoadedModel.open(model, EngineOptions.DEFAULTS.withContextSize(512));
    }

    @AfterAll
    static void stop() {
        if (server != null) {
            server.close();
        }
        if (reference != null) {
            reference.close();
        }
    }

    static int[] encode(String text) {
        return reference.tokenizer().encode(text, true, true);
    }

    /** log P(prompt[t] | prompt[0..t)) over the engine contract, in double. */
    static double logprob(int[] prompt, int t) {
        InferenceModel m = reference.model();
        float[] logits = new float[m.config().vocabSize()];
        try (Sequence s = m.newSequence()) {
            m.step(List.of(new BatchEntry(s, prompt, 0, t)), logits);
        }
        double max = Double.NEGATIVE_INFINITY;
        for (float l : logits) {
            max = Math.max(max, l);
        }
        double sum = 0;
        for (float l : logits) {
            sum += Math.exp(l - max);
        }
        return logits[prompt[t]] - max - Math.log(sum);
    }

    static JsonNode complete(String body) {
        HttpResponse<String> r = client.post("/v1/completions", body);
        assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
        return ServerClient.parse(r.body());
    }

    /** Checks the prompt part of an echo logprobs object: ids, null first entry, values, offsets. */
    static void assertPromptLogprobs(JsonNode lp, int[] prompt, String echo, int top) {
        for (int t = 0; t < prompt.length; t++) {
            assertThat(lp.get("tokens").get(t).asText()).isEqualTo(
                    new String(reference.tokenizer().tokenBytes(prompt[t]), java.nio.charset.StandardCharsets.UTF_8));
            int offset = lp.get("text_offset").get(t).asInt();
            assertThat(offset).isEqualTo(reference.tokenizer().decode(java.util.Arrays.copyOf(prompt, t)).length());
            assertThat(offset).isBetween(0, echo.length());
            if (t == 0) {
                assertThat(lp.get("token_logprobs").get(0).isNull()).isTrue();
                assertThat(lp.get("top_logprobs").get(0).isNull()).isTrue();
                continue;
            }
            double got = lp.get("token_logprobs").get(t).asDouble();
            assertThat(got).as("token %d", t).isCloseTo(logprob(prompt, t), within(LOGPROB_TOLERANCE));
            JsonNode alts = lp.get("top_logprobs").get(t);
            assertThat(alts.size()).isBetween(Math.min(1, top), top);   // fewer if two tokens share a text
            if (top > 0) {
                double best = Double.NEGATIVE_INFINITY;
                for (var it = alts.fields(); it.hasNext(); ) {
                    best = Math.max(best, it.next().getValue().asDouble());
                }
                assertThat(best).isGreaterThanOrEqualTo(got - 1e-9);   // the top alternative is at least as likely
            }
        }
    }

    @Test
    @Timeout(60)
    void echoShouldPrependThePromptAndWithLogprobsScoreEveryPromptToken() {
        String prompt = "Once upon a time there was a little dog named Max";
        int[] ids = encode(prompt);
        JsonNode plain = complete("{\"prompt\":" + OpenAiServerTest.quote(prompt) + ",\"max_tokens\":6,"
                + "\"temperature\":0}");
        String generated = plain.get("choices").get(0).get("text").asText();
        JsonNode echoed = complete("{\"prompt\":" + OpenAiServerTest.quote(prompt) + ",\"max_tokens\":6,"
                + "\"temperature\":0,\"echo\":true}");
        assertThat(echoed.get("choices").get(0).get("text").asText()).isEqualTo(prompt + generated);
        assertThat(echoed.get("choices").get(0).get("logprobs").isNull()).isTrue();

        JsonNode r = complete("{\"prompt\":" + OpenAiServerTest.quote(prompt) + ",\"max_tokens\":6,"
                + "\"temperature\":0,\"echo\":true,\"logprobs\":3}");
        JsonNode choice = r.get("choices").get(0);
        assertThat(choice.get("text").asText()).isEqualTo(prompt + generated);
        JsonNode lp = choice.get("logprobs");
        int completion = r.get("usage").get("completion_tokens").asInt();
        assertThat(r.get("usage").get("prompt_tokens").asInt()).isEqualTo(ids.length);
        for (String field : List.of("tokens", "token_logprobs", "top_logprobs", "text_offset")) {
            assertThat(lp.get(field)).as(field).hasSize(ids.length + completion);
        }
        assertPromptLogprobs(lp, ids, prompt, 3);
        // the generated part as without echo, its offsets from the end of the echoed prompt on
        JsonNode alone = complete("{\"prompt\":" + OpenAiServerTest.quote(prompt) + ",\"max_tokens\":6,"
                + "\"temperature\":0,\"logprobs\":3}").get("choices").get(0).get("logprobs");
        for (int i = 0; i < completion; i++) {
            assertThat(lp.get("tokens").get(ids.length + i)).isEqualTo(alone.get("tokens").get(i));
            // (the prefix cache may have changed how the prompt was chunked: float rounding only)
            assertThat(lp.get("token_logprobs").get(ids.length + i).asDouble())
                    .isCloseTo(alone.get("token_logprobs").get(i).asDouble(), within(1e-4));
            assertThat(lp.get("text_offset").get(ids.length + i).asInt())
                    .isEqualTo(prompt.length() + alone.get("text_offset").get(i).asInt());
        }
    }

    @Test
    @Timeout(60)
    void echoWithLogprobsShouldCoverEveryPromptFormInOrder() {
        int[] ids = encode("The cat sat");
        String idList = java.util.Arrays.toString(ids).replace(" ", "");
        JsonNode r = complete("{\"prompt\":[" + idList + ",[" + ids[0] + "]],\"max_tokens\":2,\"temperature\":0,"
                + "\"echo\":true,\"logprobs\":1}");
        assertThat(r.get("choices")).hasSize(2);
        JsonNode first = r.get("choices").get(0);
        assertThat(first.get("index").asInt()).isZero();
        String echo = reference.tokenizer().decode(ids);
        assertThat(first.get("text").asText()).startsWith(echo);
        assertPromptLogprobs(first.get("logprobs"), ids, echo, 1);
        // a one-token prompt has nothing to score: its entry is null, the generated tokens follow
        JsonNode single = r.get("choices").get(1);
        assertThat(single.get("index").asInt()).isEqualTo(1);
        assertThat(single.get("logprobs").get("token_logprobs").get(0).isNull()).isTrue();
        assertThat(single.get("logprobs").get("tokens")).hasSize(1 + 2);
        assertThat(r.get("usage").get("prompt_tokens").asInt()).isEqualTo(ids.length + 1);

        JsonNode strings = complete("{\"prompt\":[\"The cat sat\",\"One day\"],\"max_tokens\":2,\"temperature\":0,"
                + "\"echo\":true,\"logprobs\":0}");
        assertPromptLogprobs(strings.get("choices").get(0).get("logprobs"), ids, "The cat sat", 0);
        assertPromptLogprobs(strings.get("choices").get(1).get("logprobs"), encode("One day"), "One day", 0);
        assertThat(strings.get("choices").get(1).get("text").asText()).startsWith("One day");
    }

    @Test
    @Timeout(60)
    void aStreamShouldSendTheEchoAndItsLogprobsFirst() {
        String prompt = "Lily and Tom went to the park";
        String body = "{\"prompt\":" + OpenAiServerTest.quote(prompt) + ",\"max_tokens\":5,\"temperature\":0,"
                + "\"echo\":true,\"logprobs\":2";
        JsonNode whole = complete(body + "}").get("choices").get(0);
        ServerClient.Stream s = client.stream("/v1/completions", body + ",\"stream\":true}");
        assertThat(s.status()).isEqualTo(200);
        assertThat(s.data().getLast()).isEqualTo("[DONE]");
        JsonNode first = s.chunks().getFirst().get("choices").get(0);
        assertThat(first.get("text").asText()).isEqualTo(prompt);
        int n = encode(prompt).length;
        JsonNode lp = first.get("logprobs");
        assertThat(lp.get("tokens")).hasSize(n);
        JsonNode wholeLp = whole.get("logprobs");
        for (int t = 0; t < n; t++) {
            assertThat(lp.get("tokens").get(t)).isEqualTo(wholeLp.get("tokens").get(t));
            assertThat(lp.get("token_logprobs").get(t)).isEqualTo(wholeLp.get("token_logprobs").get(t));
            assertThat(lp.get("text_offset").get(t)).isEqualTo(wholeLp.get("text_offset").get(t));
        }
        var text = new StringBuilder();
        for (JsonNode c : s.chunks()) {
            if (!c.get("choices").isEmpty()) {
                text.append(c.get("choices").get(0).get("text").asText());
            }
        }
        assertThat(text.toString()).isEqualTo(whole.get("text").asText());
    }

    @Test
    @Timeout(60)
    void maxTokensZeroWithEchoShouldScoreThePromptWithoutGenerating() {
        String prompt = "The cat sat on the mat";
        int[] ids = encode(prompt);
        String body = "{\"prompt\":[" + OpenAiServerTest.quote(prompt) + ",\"One day\"],\"max_tokens\":0,"
                + "\"echo\":true,\"logprobs\":2";
        JsonNode r = complete(body + "}");
        JsonNode first = r.get("choices").get(0);
        assertThat(first.get("text").asText()).isEqualTo(prompt);
        assertThat(first.get("finish_reason").asText()).isEqualTo("length");
        assertThat(first.get("logprobs").get("tokens")).hasSize(ids.length);
        assertPromptLogprobs(first.get("logprobs"), ids, prompt, 2);
        assertThat(r.get("choices").get(1).get("text").asText()).isEqualTo("One day");
        assertThat(r.get("usage").get("completion_tokens").asInt()).isZero();
        assertThat(r.get("usage").get("prompt_tokens").asInt()).isEqualTo(ids.length + encode("One day").length);

        ServerClient.Stream s = client.stream("/v1/completions", body + ",\"stream\":true,"
                + "\"stream_options\":{\"include_usage\":true}}");
        assertThat(s.data().getLast()).isEqualTo("[DONE]");
        var texts = new String[] {"", ""};
        int finishes = 0;
        for (JsonNode c : s.chunks()) {
            for (JsonNode ch : c.get("choices")) {
                texts[ch.get("index").asInt()] += ch.get("text").asText();
                finishes += ch.get("finish_reason").isNull() ? 0 : 1;
            }
        }
        assertThat(texts).containsExactly(prompt, "One day");
        assertThat(finishes).isEqualTo(2);
        assertThat(s.chunks().getLast().get("usage")).isEqualTo(r.get("usage"));

        HttpResponse<String> noEcho = client.post("/v1/completions", "{\"prompt\":\"x\",\"max_tokens\":0}");
        assertThat(noEcho.statusCode()).isEqualTo(400);
        assertThat(ServerClient.parse(noEcho.body()).get("error").get("param").asText()).isEqualTo("max_tokens");
    }

    @Test
    @Timeout(30)
    void unsupportedOrOutOfRangeFieldsShouldBe400sNamingTheField() {
        for (String[] c : new String[][] {
            {"{\"prompt\":\"x\",\"suffix\":\"the end\"}", "suffix"},
            {"{\"prompt\":\"x\",\"logprobs\":6}", "logprobs"},
            {"{\"prompt\":\"x\",\"logprobs\":-1}", "logprobs"},
            {"{\"prompt\":\"x\",\"echo\":\"yes\"}", "echo"},
            {"{\"prompt\":\"x\",\"best_of\":3}", "best_of"},
            {"{\"prompt\":[]}", "prompt"},
            {"{\"prompt\":[[1,2],[]]}", "prompt[1]"},
            {"{\"prompt\":[1,100000]}", "prompt[1]"}}) {
            HttpResponse<String> r = client.post("/v1/completions", c[0]);
            assertThat(r.statusCode()).as(c[0] + " -> " + r.body()).isEqualTo(400);
            assertThat(ServerClient.parse(r.body()).get("error").get("param").asText()).as(c[0]).isEqualTo(c[1]);
        }
        // an empty suffix inserts nothing and is accepted
        assertThat(client.post("/v1/completions", "{\"prompt\":\"x\",\"suffix\":\"\",\"max_tokens\":1}").statusCode())
                .isEqualTo(200);
    }
}
