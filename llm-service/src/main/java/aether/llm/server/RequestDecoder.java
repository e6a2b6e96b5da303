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

    /**
     * One decoded request.
     *
     * @param prompts      token ids of each prompt (chat: one)
     * @param promptTexts  each prompt's text (for {@code echo}); null entries for token-id prompts
     * @param logprobs     -1 none; else how many alternatives per token (chat: {@code top_logprobs})
     */
    record Decoded(String model, boolean stream, boolean includeUsage, List<int[]> prompts, List<String> promptTexts,
            List<Integer> maxTokens, List<String> stop, SamplingParams sampling, int logprobs, boolean echo,
            boolean ignoreEos) {

        GenerationRequest request(int i) {
            return new GenerationRequest(prompts.get(i), maxTokens.get(i), stop, sampling, logprobs, ignoreEos);
        }
    }

    private final Tokenizer tokenizer;
    private final ChatTemplate template;
    private final String modelId;
    private final int contextSize;
    private final int maxPromptTokens;
    private final int vocab;

    RequestDecoder(Tokenizer tokenizer, ChatTemplate template, String modelId, int contextSize, int maxPromptTokens) {
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
        if (f.has("tools") || f.has("tool_choice") && !"none".equals(f.get("tool_choice").asText())) {
            throw ApiException.unsupported(f.has("tools") ? "tools" : "tool_choice",
                    "tool calling is not supported by this server yet");
        }
        boolean jsonObject = false;
        if (f.has("response_format")) {
            JsonFields rf = JsonFields.of(f.get("response_format"), "response_format");
            String type = rf.requireString("type");
            if (type.equals("json_object")) {
                jsonObject = true;
            } else if (!type.equals("text")) {
                throw ApiException.unsupported("response_format.type", "response_format '" + type
                        + "' is not supported by this server yet (supported: text, json_object)");
            }
        }
        List<ChatMessage> messages = messages(f);
        String text;
        try {
            synchronized (template) {
                text = template.render(messages, true);
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
        if (!jsonObject) {
            return d;
        }
        SamplingParams p = d.sampling();
        return new Decoded(d.model(), d.stream(), d.includeUsage(), d.prompts(), d.promptTexts(), d.maxTokens(),
                d.stop(), new SamplingParams(p.temperature(), p.topP(), p.topK(), p.minP(), p.presencePenalty(),
                        p.frequencyPenalty(), p.seed(), p.logitBias(), true), d.logprobs(), d.echo(), d.ignoreEos());
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
        if (f.optLong("n", 1L, 1, 128) != 1) {
            throw ApiException.unsupported("n", "'n' other than 1 is not supported by this server; send separate "
                    + "requests");
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
                echo, f.optBoolean("ignore_eos", false));
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
            out.add(new ChatMessage.ToolCall(c.optString("id", null), fn.requireString("name"),
                    fn.optString("arguments", "{}")));
        }
        return out;
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
