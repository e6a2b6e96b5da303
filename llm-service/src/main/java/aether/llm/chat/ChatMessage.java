package aether.llm.chat;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * One turn of a conversation as chat templates see it (the OpenAI / Hugging Face message shape).
 *
 * @param role       {@code system}, {@code user}, {@code assistant} or {@code tool} (other roles pass through: some
 *                   templates know their own, e.g. {@code ipython})
 * @param content    the text; may be null for an assistant turn that only calls tools
 * @param name       optional speaker or tool name, null when absent
 * @param toolCalls  the assistant's tool calls, empty when none
 * @param toolCallId for a {@code tool} turn, the id of the call it answers; null when absent
 */
public record ChatMessage(String role, String content, String name, List<ToolCall> toolCalls, String toolCallId) {

    public ChatMessage {
        Objects.requireNonNull(role, "role");
        if (role.isBlank()) {
            throw new IllegalArgumentException("role: blank (expected: system, user, assistant or tool)");
        }
        toolCalls = toolCalls == null ? List.of() : List.copyOf(toolCalls);
    }

    public static ChatMessage system(String content) {
        return new ChatMessage("system", content, null, List.of(), null);
    }

    public static ChatMessage user(String content) {
        return new ChatMessage("user", content, null, List.of(), null);
    }

    public static ChatMessage assistant(String content) {
        return new ChatMessage("assistant", content, null, List.of(), null);
    }

    /** An assistant turn that calls tools (content null, as OpenAI clients send it). */
    public static ChatMessage assistantToolCalls(List<ToolCall> calls) {
        return new ChatMessage("assistant", null, null, calls, null);
    }

    /** A tool's answer to the call {@code toolCallId}. */
    public static ChatMessage tool(String toolCallId, String name, String content) {
        return new ChatMessage("tool", content, name, List.of(), toolCallId);
    }

    /**
     * One function call. {@code arguments} is what the template receives as {@code tool_call.function.arguments}: a
     * map (Hugging Face templates mostly {@code tojson} it) or the raw JSON string an OpenAI client sent.
     */
    public record ToolCall(String id, String name, Object arguments) {
        public ToolCall {
            Objects.requireNonNull(name, "name");
            if (arguments == null) {
                arguments = Map.of();
            } else if (!(arguments instanceof Map<?, ?>) && !(arguments instanceof String)) {
                throw new IllegalArgumentException(
                        "arguments: " + arguments.getClass().getName() + " (expected: a Map or a JSON string)");
            }
        }
    }

    /**
     * The dict a template indexes: {@code role}, {@code content} and only the optional keys that are present, so
     * that {@code message.tool_calls is defined} and {@code 'name' in message} behave as in Python. Each tool call is
     * OpenAI-shaped ({@code id}, {@code type}, {@code function.name}, {@code function.arguments}), as llama.cpp and
     * transformers pass them.
     */
    Map<String, Object> toTemplateValue() {
        var m = new LinkedHashMap<String, Object>(8);
        m.put("role", role);
        m.put("content", content);
        if (name != null) {
            m.put("name", name);
        }
        if (!toolCalls.isEmpty()) {
            var calls = new ArrayList<Object>(toolCalls.size());
            for (ToolCall call : toolCalls) {
                var fn = new LinkedHashMap<String, Object>(4);
                fn.put("name", call.name());
                fn.put("arguments", call.arguments());
                var c = new LinkedHashMap<String, Object>(8);
                if (call.id() != null) {
                    c.put("id", call.id());
                }
                c.put("type", "function");
                c.put("function", fn);
                calls.add(c);
            }
            m.put("tool_calls", calls);
        }
        if (toolCallId != null) {
            m.put("tool_call_id", toolCallId);
        }
        return m;
    }
}
