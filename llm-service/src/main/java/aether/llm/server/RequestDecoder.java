package aether.llm.server;

import aether.llm.chat.ChatMessage;
import aether.llm.chat.ChatTemplate;
import aether.llm.chat.ChatTemplateException;
import aether.llm.tokenizer.Tokenizer;
import com.fasterxml.jackson.databind.JsonNode;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Turns the JSON body of {@code /v1/chat/completions} and {@code /v1/completions} into token ids and generation
 * settings, checking every field once: wrong types, out-of-range values, unknown or unsupported fields and prompts
 * that do not fit the context are 400s naming the field. Thread-safe (the template is rendered under a lock).
 */
final class RequestDecoder {

    private static final Set<String> COMMON = Set.of("model", "stream", "stream_options", "max_tokens",
            "temperature", "top_p", "top_k", "min_p", "stop", "seed", "presence_penalty", "frequency_penalty",
            "logit_bias", "n", "user", "ignore_eos", "logprobs");
    private static final Set<String> CHAT = Set.of("messages", "max_completion_tokens", "top_logprobs",
            "response_format", "tools", "tool_choice", "parallel_tool_calls", "metadata", "store", "service_tier");
    private static final Set<String> COMPLETION = Set.of("prompt", "echo", "suffix", "best_of");
    private static final Set<String> ROLES = Set.of("system", "developer", "user", "assistant", "tool");
    static final int MAX_STOPS = 4;
    /** Choices per request at most ({@code n}); each is a sequence, so also at most the server's concurrency. */
    static final int MAX_N = 16;

    /**
     * One decoded request.
     *
     * @param prompts      token ids of each prompt (chat: one)
     * @param promptTexts  each prompt's text (for {@code echo}); null entries for token-id prompts
     * @param logprobs     -1 none; else how many alternatives per token (chat: {@code top_logprobs})
     * @param n            choices per prompt; choice {@code k} answers prompt {@code k / n}
     * @param tools        the request's tools, null when none
     */
    record Decoded(String model, boolean stream, boolean includeUsage, List<int[]> prompts, List<String> promptTexts,
            List<Integer> maxTokens, List<String> stop, SamplingParams sampling, int logprobs, boolean echo,
            boolean ignoreEos, int n, ToolCalls.Setup tools) {

        /** Choices in the response: {@code n} per prompt. */
        int choices() {
            return prompts.size() * n;
        }

        /** The prompt choice {@code k} answers. */
        int promptOf(int k) {
            return k / n;
        }

        /**
         * The sequence of choice {@code k}. The {@code j}-th choice of a prompt samples with a seed derived from the
         * request's ({@code j = 0} keeps it, so {@code n: 1} is unchanged), so that choices differ and repeat.
         */
        GenerationRequest request(int k) {
            int j = k % n;
            SamplingParams p = j == 0 ? sampling : sampling.withSeed(mix(sampling.seed(), j));
            return new GenerationRequest(prompts.get(k / n), maxTokens.get(k / n), stop, p, logprobs, ignoreEos);
        }

        Decoded with(SamplingParams p, ToolCalls.Setup t) {
            return new Decoded(model, stream, includeUsage, prompts, promptTexts, maxTokens, stop, p, logprobs, echo,
                    ignoreEos, n, t);
        }
    }

    /** SplitMix64 of the seed and the choice index. */
    static long mix(long seed, int choice) {
        long z = seed + 0x9E3779B97F4A7C15L * choice;
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    private final Tokenizer tokenizer;
    private final ChatTemplate template;
    private final String modelId;
    private final int contextSize;
    private final int maxPromptTokens;
    private final int vocab;
    private final int maxSequences;

    /** @param maxSequences sequences one request may run at once (the engine's max concurrency) */
    RequestDecoder(Tokenizer tokenizer, ChatTemplate template, String modelId, int contextSize, int maxPromptTokens,
            int maxSequences) {
        this.maxSequences = maxSequences;
        this.tokenizer = tokenizer;
        this.template = template;
        this.modelId = modelId;
        this.contextSize = contextSize;
        this.maxPromptTokens = Math.min(maxPromptTokens, contextSize);
        this.vocab = tokenizer.vocabSize();
    }

    Decoded chat(JsonNode body) {
        JsonFields f = JsonFields.of(body, "");
        checkKnown(f, CHAT);
        ToolCalls.Setup tools = ToolCalls.decode(f, template);
        if (f.has("parallel_tool_calls")) {
            f.optBoolean("parallel_tool_calls", true);   // type-checked; one forced call, or what the model writes
        }
        boolean jsonObject = false;
        SchemaGrammar grammar = null;
        if (f.has("response_format")) {
            JsonFields rf = JsonFields.of(f.get("response_format"), "response_format");
            String type = rf.requireString("type");
            switch (type) {
                case "json_object" -> jsonObject = true;
                case "json_schema" -> grammar = new SchemaGrammar(jsonSchema(rf));
                case "text" -> { }
                default -> throw ApiException.invalid("response_format.type", "'response_format.type' is '" + type
                        + "', expected 'text', 'json_object' or 'json_schema'");
            }
        }
        if (tools != null && tools.forced()) {
            if (jsonObject || grammar != null) {
                throw ApiException.invalid("response_format", "'response_format' " + (jsonObject ? "json_object"
                        : "json_schema") + " cannot be combined with a forced tool call ('tool_choice')");
            }
            grammar = ToolCalls.grammar(tools);
        }
        List<ChatMessage> messages = messages(f);
        String text;
        try {
            synchronized (template) {
                text = tools == null ? template.render(messages, true)
                        : template.render(messages, true, java.util.Map.of("tools", tools.templateValue()));
            }
        } catch (ChatTemplateException e) {
            throw ApiException.invalid("messages", "the model's chat template rejected the messages: "
                    + e.getMessage());
        }
        boolean bosInText = !template.bosToken().isEmpty() && text.startsWith(template.bosToken());
        int[] ids = tokenizer.encode(text, !bosInText, true);
        Integer max = null;
        if (f.has("max_completion_tokens")) {
            max = (int) (long) f.optLong("max_completion_tokens", null, 1, Integer.MAX_VALUE);
        } else if (f.has("max_tokens")) {
            max = (int) (long) f.optLong("max_tokens", null, 1, Integer.MAX_VALUE);
        }
        String maxField = f.has("max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
        boolean logprobs = f.optBoolean("logprobs", false);
        int top = (int) (long) f.optLong("top_logprobs", 0L, 0, 20);
        if (f.has("top_logprobs") && !logprobs) {
            throw ApiException.invalid("top_logprobs", "'top_logprobs' requires 'logprobs' to be true");
        }
        Decoded d = common(f, List.of(checkPrompt(ids, "messages")), java.util.Collections.singletonList(null), max,
                maxField, logprobs ? top : -1, false);
        SamplingParams p = d.sampling();
        if (grammar != null) {
            p = p.withGrammar(grammar);
        } else if (jsonObject) {
            p = new SamplingParams(p.temperature(), p.topP(), p.topK(), p.minP(), p.presencePenalty(),
                    p.frequencyPenalty(), p.seed(), p.logitBias(), true);
        }
        return d.with(p, tools);
    }

    /** {@code response_format.json_schema}: {@code name}, optional {@code schema}, {@code strict}, {@code description}. */
    private static SchemaNode jsonSchema(JsonFields rf) {
        JsonFields js = JsonFields.of(rf.get("json_schema"), "response_format.json_schema");
        for (Iterator<Map.Entry<String, JsonNode>> it = js.fields(); it.hasNext(); ) {
            String k = it.next().getKey();
            if (!Set.of("name", "schema", "strict", "description").contains(k)) {
                throw ApiException.invalid("response_format.json_schema." + k, "unrecognized argument "
                        + "'response_format.json_schema." + k + "' (expected name, schema, strict, description)");
            }
        }
        String name = js.requireString("name");
        if (!name.matches("[A-Za-z0-9_-]{1,64}")) {
            throw ApiException.invalid("response_format.json_schema.name", "'response_format.json_schema.name' is '"
                    + name + "'; expected 1 to 64 letters, digits, '_' or '-'");
        }
        js.optBoolean("strict", false);
        js.optString("description", null);
        JsonNode schema = js.get("schema");
        try {
            return JsonSchemaCompiler.compile(schema == null
                    ? com.fasterxml.jackson.databind.node.JsonNodeFactory.instance.objectNode() : schema);
        } catch (JsonSchemaCompiler.SchemaException e) {
            throw ApiException.invalid("response_format.json_schema.schema", "response_format.json_schema.schema: "
                    + e.getMessage() + " at " + e.pointer);
        }
    }

    Decoded completion(JsonNode body) {
        JsonFields f = JsonFields.of(body, "");
        checkKnown(f, COMPLETION);
        JsonNode suffix = f.get("suffix");
        if (suffix != null && !(suffix.isTextual() && suffix.textValue().isEmpty())) {
            throw ApiException.unsupported("suffix", "'suffix' (insertion) is not supported by this server");
        }
        if (f.has("best_of") && f.optLong("best_of", 1L, 1, 1000) != 1) {
            throw ApiException.unsupported("best_of", "'best_of' other than 1 is not supported by this server");
        }
        JsonNode prompt = f.get("prompt");
        if (prompt == null) {
            throw ApiException.invalid("prompt", "missing required field 'prompt'");
        }
        var ids = new ArrayList<int[]>();
        var texts = new ArrayList<String>();
        if (prompt.isTextual()) {
            ids.add(encode(prompt.textValue(), "prompt"));
            texts.add(prompt.textValue());
        } else if (prompt.isArray() && !prompt.isEmpty() && prompt.get(0).isNumber()) {
            ids.add(tokenIds(prompt, "prompt"));
            texts.add(null);
        } else if (prompt.isArray() && !prompt.isEmpty()) {
            if (prompt.size() > 64) {
                throw ApiException.invalid("prompt", "'prompt' holds " + prompt.size() + " prompts, at most 64");
            }
            for (int i = 0; i < prompt.size(); i++) {
                JsonNode p = prompt.get(i);
                String path = "prompt[" + i + "]";
                if (p.isTextual()) {
                    ids.add(encode(p.textValue(), path));
                    texts.add(p.textValue());
                } else if (p.isArray()) {
                    ids.add(tokenIds(p, path));
                    texts.add(null);
                } else {
                    throw ApiException.invalid(path, "'" + path + "' must be a string or an array of token ids, found "
                            + JsonFields.describe(p));
                }
            }
        } else {
            throw ApiException.invalid("prompt", "'prompt' must be a string, an array of strings, an array of token "
                    + "ids or an array of such arrays, found " + JsonFields.describe(prompt));
        }
        boolean echo = f.optBoolean("echo", false);
        // max_tokens 0 with echo scores a prompt without generating (OpenAI's legacy API allows it)
        Integer max = f.has("max_tokens")
                ? (int) (long) f.optLong("max_tokens", null, echo ? 0 : 1, Integer.MAX_VALUE) : 16;
        int logprobs = (int) (long) f.optLong("logprobs", -1L, 0, 5);
        for (int i = 0; i < ids.size(); i++) {
            checkPrompt(ids.get(i), ids.size() == 1 ? "prompt" : "prompt[" + i + "]");
        }
        return common(f, ids, texts, max, "max_tokens", logprobs, echo);
    }

    private Decoded common(JsonFields f, List<int[]> prompts, List<String> texts, Integer max, String maxField,
            int logprobs, boolean echo) {
        String model = f.optString("model", modelId);
        if (!model.equals(modelId)) {
            throw ApiException.notFound("model", "model_not_found", "the model '" + model
                    + "' does not exist; this server serves '" + modelId + "'");
        }
        int n = (int) (long) f.optLong("n", 1L, 1, Integer.MAX_VALUE);
        if (n > MAX_N) {
            throw ApiException.invalid("n", "'n' is " + n + "; this server returns at most " + MAX_N + " choices");
        }
        if (n > 1 && (long) n * prompts.size() > maxSequences) {
            throw ApiException.invalid("n", "'n' of " + n + (prompts.size() > 1 ? " for " + prompts.size()
                    + " prompts" : "") + " asks for " + (long) n * prompts.size() + " sequences; this server runs at "
                    + "most " + maxSequences + " at once (--max-concurrency)");
        }
        boolean stream = f.optBoolean("stream", false);
        boolean includeUsage = false;
        if (f.has("stream_options")) {
            if (!stream) {
                throw ApiException.invalid("stream_options", "'stream_options' is only allowed when 'stream' is true");
            }
            JsonFields so = JsonFields.of(f.get("stream_options"), "stream_options");
            includeUsage = so.optBoolean("include_usage", false);
        }
        var maxTokens = new ArrayList<Integer>(prompts.size());
        for (int[] p : prompts) {
            if (max == null) {
                maxTokens.add(Math.max(1, contextSize - p.length + 1));
            } else if ((long) p.length + max > contextSize + 1L) {
                throw ApiException.invalid(maxField, "context_length_exceeded", "this model's context is "
                        + contextSize + " tokens; the prompt has " + p.length + " and '" + maxField + "' asks for "
                        + max + " more (at most " + Math.max(0, contextSize + 1 - p.length) + ")");
            } else {
                maxTokens.add(max);
            }
        }
        double temperature = f.optDouble("temperature", 1.0, 0, 2);
        double topP = f.optDouble("top_p", 1.0, 0, 1);
        if (topP == 0) {
            temperature = 0;
            topP = 1;
        }
        int topK = (int) (long) f.optLong("top_k", 0L, 0, vocab);
        double minP = f.optDouble("min_p", 0, 0, 1);
        double presence = f.optDouble("presence_penalty", 0, -2, 2);
        double frequency = f.optDouble("frequency_penalty", 0, -2, 2);
        // no seed: a fresh random one, so unseeded sampled requests differ as OpenAI's do
        long seed = f.has("seed") ? f.optLong("seed", 0L, Long.MIN_VALUE, Long.MAX_VALUE)
                : java.util.concurrent.ThreadLocalRandom.current().nextLong();
        var sampling = new SamplingParams(temperature, topP, topK, minP, presence, frequency, seed, logitBias(f),
                false);
        return new Decoded(model, stream, includeUsage, prompts, texts, maxTokens, stops(f), sampling, logprobs,
                echo, f.optBoolean("ignore_eos", false), n, null);
    }

    private static void checkKnown(JsonFields f, Set<String> specific) {
        for (Iterator<Map.Entry<String, JsonNode>> it = f.fields(); it.hasNext(); ) {
            String name = it.next().getKey();
            if (!COMMON.contains(name) && !specific.contains(name)) {
                throw ApiException.invalid(name, "unrecognized request argument supplied: '" + name + "'");
            }
        }
    }

    private List<ChatMessage> messages(JsonFields f) {
        JsonNode list = f.get("messages");
        if (list == null) {
            throw ApiException.invalid("messages", "missing required field 'messages'");
        }
        if (!list.isArray() || list.isEmpty()) {
            throw ApiException.invalid("messages", "'messages' must be a non-empty array, found "
                    + JsonFields.describe(list));
        }
        var out = new ArrayList<ChatMessage>(list.size());
        for (int i = 0; i < list.size(); i++) {
            String path = "messages[" + i + "]";
            JsonFields m = JsonFields.of(list.get(i), path);
            String role = m.requireString("role");
            if (!ROLES.contains(role)) {
                throw ApiException.invalid(path + ".role", "'" + path + ".role' is '" + role
                        + "', expected one of system, developer, user, assistant, tool");
            }
            if (role.equals("developer")) {
                role = "system";
            }
            List<ChatMessage.ToolCall> calls = toolCalls(m, path);
            String content = content(m.get("content"), path + ".content", role.equals("assistant") && !calls.isEmpty());
            String name = m.optString("name", null);
            String toolCallId = m.optString("tool_call_id", null);
            out.add(new ChatMessage(role, content, name, calls, toolCallId));
        }
        return out;
    }

    private static String content(JsonNode v, String path, boolean mayBeNull) {
        if (v == null) {
            if (mayBeNull) {
                return null;
            }
            throw ApiException.invalid(path, "missing required field '" + path + "'");
        }
        if (v.isTextual()) {
            return v.textValue();
        }
        if (!v.isArray()) {
            throw ApiException.invalid(path, "'" + path + "' must be a string or an array of content parts, found "
                    + JsonFields.describe(v));
        }
        var text = new StringBuilder();
        for (int i = 0; i < v.size(); i++) {
            String partPath = path + "[" + i + "]";
            JsonFields part = JsonFields.of(v.get(i), partPath);
            String type = part.requireString("type");
            if (!type.equals("text")) {
                throw ApiException.unsupported(partPath + ".type", "content part type '" + type
                        + "' is not supported by this model (supported: text)");
            }
            text.append(part.requireString("text"));
        }
        return text.toString();
    }

    private static List<ChatMessage.ToolCall> toolCalls(JsonFields m, String path) {
        JsonNode calls = m.get("tool_calls");
        if (calls == null) {
            return List.of();
        }
        if (!calls.isArray()) {
            throw ApiException.invalid(path + ".tool_calls", "'" + path + ".tool_calls' must be an array, found "
                    + JsonFields.describe(calls));
        }
        var out = new ArrayList<ChatMessage.ToolCall>(calls.size());
        for (int i = 0; i < calls.size(); i++) {
            String p = path + ".tool_calls[" + i + "]";
            JsonFields c = JsonFields.of(calls.get(i), p);
            JsonFields fn = JsonFields.of(c.get("function"), p + ".function");
            String arguments = fn.optString("arguments", "{}");
            out.add(new ChatMessage.ToolCall(c.optString("id", null), fn.requireString("name"),
                    argumentsValue(arguments)));
        }
        return out;
    }

    /**
     * OpenAI clients send arguments as a JSON text; Hugging Face templates expect a mapping (they {@code tojson} it),
     * so an object text is passed as a map, anything else as the text.
     */
    private static Object argumentsValue(String arguments) {
        try {
            JsonNode node = new com.fasterxml.jackson.databind.ObjectMapper().readTree(arguments);
            if (node != null && node.isObject()) {
                return new com.fasterxml.jackson.databind.ObjectMapper().convertValue(node, java.util.LinkedHashMap.class);
            }
        } catch (java.io.IOException e) {
            // not JSON: the template gets the text as it came
        }
        return arguments;
    }

    private List<String> stops(JsonFields f) {
        JsonNode v = f.get("stop");
        if (v == null) {
            return List.of();
        }
        var out = new ArrayList<String>();
        if (v.isTextual()) {
            out.add(v.textValue());
        } else if (v.isArray()) {
            if (v.size() > MAX_STOPS) {
                throw ApiException.invalid("stop", "'stop' holds " + v.size() + " strings, at most " + MAX_STOPS);
            }
            for (int i = 0; i < v.size(); i++) {
                out.add(JsonFields.string(v.get(i), "stop[" + i + "]"));
            }
        } else {
            throw ApiException.invalid("stop", "'stop' must be a string or an array of strings, found "
                    + JsonFields.describe(v));
        }
        for (int i = 0; i < out.size(); i++) {
            if (out.get(i).isEmpty()) {
                throw ApiException.invalid(v.isArray() ? "stop[" + i + "]" : "stop", "stop strings must not be empty");
            }
        }
        return out;
    }

    private Map<Integer, Double> logitBias(JsonFields f) {
        JsonNode v = f.get("logit_bias");
        if (v == null) {
            return Map.of();
        }
        JsonFields bias = JsonFields.of(v, "logit_bias");
        var out = new HashMap<Integer, Double>();
        for (Iterator<Map.Entry<String, JsonNode>> it = bias.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            String path = "logit_bias." + e.getKey();
            int id;
            try {
                id = Integer.parseInt(e.getKey());
            } catch (NumberFormatException ex) {
                throw ApiException.invalid(path, "logit_bias key '" + e.getKey() + "' must be a token id");
            }
            if (id < 0 || id >= vocab) {
                throw ApiException.invalid(path, "logit_bias token id " + id + " is outside the vocabulary (0.."
                        + (vocab - 1) + ")");
            }
            out.put(id, JsonFields.number(e.getValue(), path, -100, 100));
        }
        return out;
    }

    private int[] encode(String text, String path) {
        int[] ids = tokenizer.encode(text, true, true);
        if (ids.length == 0) {
            throw ApiException.invalid(path, "'" + path + "' is empty");
        }
        return ids;
    }

    private int[] tokenIds(JsonNode array, String path) {
        if (array.isEmpty()) {
            throw ApiException.invalid(path, "'" + path + "' is an empty list of token ids");
        }
        int[] ids = new int[array.size()];
        for (int i = 0; i < ids.length; i++) {
            ids[i] = (int) JsonFields.integer(array.get(i), path + "[" + i + "]", 0, vocab - 1);
        }
        return ids;
    }

    private int[] checkPrompt(int[] ids, String path) {
        if (ids.length > maxPromptTokens) {
            throw ApiException.invalid(path, "context_length_exceeded", "the prompt has " + ids.length
                    + " tokens; this server accepts at most " + maxPromptTokens);
        }
        return ids;
    }
}
