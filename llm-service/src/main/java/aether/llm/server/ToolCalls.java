package aether.llm.server;

import aether.llm.chat.ChatTemplate;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * OpenAI's {@code tools}/{@code tool_choice} for chat completions: the request's function definitions (passed to the
 * model's chat template as {@code tools}, as transformers' {@code apply_chat_template} does), the grammar that forces a
 * call for {@code tool_choice: "required"} or a named function, and the parsing of the model's output back into
 * {@code tool_calls}. The call format follows the template: Hermes/Qwen2.5 templates (they mention
 * {@code <tool_call>}) get {@code <tool_call>\n{"name": …, "arguments": …}\n</tool_call>}; Llama 3.1 style
 * templates (they ask for {@code "parameters"}) a bare {@code {"name": …, "parameters": …}}; any other template that
 * reads {@code tools} a bare {@code {"name": …, "arguments": …}}.
 */
final class ToolCalls {

    private static final ObjectMapper MAPPER = new ObjectMapper();
    private static final Pattern NAME = Pattern.compile("[A-Za-z0-9_-]{1,64}");
    private static final Pattern HERMES_CALL = Pattern.compile("<tool_call>\\s*(.*?)\\s*(?:</tool_call>|$)",
            Pattern.DOTALL);
    static final int MAX_TOOLS = 128;

    enum Format {
        /** {@code <tool_call>{"name":…,"arguments":…}</tool_call>} (Hermes, Qwen2.5). */
        HERMES("arguments"),
        /** {@code {"name":…,"parameters":…}} (Llama 3.1/3.2 JSON tool calling). */
        LLAMA("parameters"),
        /** {@code {"name":…,"arguments":…}}. */
        JSON("arguments");

        final String argumentsKey;

        Format(String argumentsKey) {
            this.argumentsKey = argumentsKey;
        }

        static Format of(ChatTemplate template) {
            String source = template.source();
            if (source.contains("<tool_call>")) {
                return HERMES;
            }
            if (source.contains("\"parameters\"")) {
                return LLAMA;
            }
            return JSON;
        }
    }

    /** One function the model may call. */
    record Function(String name, SchemaNode parameters) {}

    /**
     * A request's tools.
     *
     * @param choice        {@code none}, {@code auto}, {@code required}, or the name of the function to call
     * @param templateValue the {@code tools} list as the chat template receives it (the request's JSON)
     */
    record Setup(List<Function> functions, Format format, String choice, List<?> templateValue) {

        /** Whether the output is read for tool calls. */
        boolean parses() {
            return !choice.equals("none");
        }

        /** Whether a call is forced (constrained decoding). */
        boolean forced() {
            return !choice.equals("none") && !choice.equals("auto");
        }
    }

    /** One call, in OpenAI's shape: {@code arguments} is a JSON text. */
    record Call(String id, String name, String arguments) {}

    /** The output read back: the text outside any calls (null when none) and the calls. */
    record Parsed(String content, List<Call> calls) {}

    private ToolCalls() {}

    /**
     * Reads {@code tools} and {@code tool_choice} of a chat request; null when there are no tools.
     *
     * @throws ApiException naming the field: malformed definitions, an unsupported parameters schema, an unknown
     *                      function in {@code tool_choice}, or a template that does not read {@code tools}
     */
    static Setup decode(JsonFields f, ChatTemplate template) {
        JsonNode tools = f.get("tools");
        JsonNode choiceNode = f.get("tool_choice");
        if (tools == null || tools.isArray() && tools.isEmpty()) {
            if (choiceNode != null && !(choiceNode.isTextual() && choiceNode.textValue().equals("none"))) {
                throw ApiException.invalid("tool_choice", "'tool_choice' other than 'none' requires 'tools'");
            }
            return null;
        }
        if (!tools.isArray()) {
            throw ApiException.invalid("tools", "'tools' must be an array of function tools, found "
                    + JsonFields.describe(tools));
        }
        if (tools.size() > MAX_TOOLS) {
            throw ApiException.invalid("tools", "'tools' holds " + tools.size() + " tools, at most " + MAX_TOOLS);
        }
        if (!template.source().contains("tools")) {
            throw ApiException.unsupported("tools", "this model's chat template (" + template.name() + ") does not "
                    + "support tools: it never reads 'tools'; send the request without 'tools' or serve the model "
                    + "with a tool-capable --chat-template");
        }
        var functions = new ArrayList<Function>();
        for (int i = 0; i < tools.size(); i++) {
            String path = "tools[" + i + "]";
            JsonFields t = JsonFields.of(tools.get(i), path);
            String type = t.requireString("type");
            if (!type.equals("function")) {
                throw ApiException.invalid(path + ".type", "'" + path + ".type' is '" + type + "', expected 'function'");
            }
            JsonFields fn = JsonFields.of(t.get("function"), path + ".function");
            String name = fn.requireString("name");
            if (!NAME.matcher(name).matches()) {
                throw ApiException.invalid(path + ".function.name", "function name '" + name + "' must be 1 to 64 "
                        + "letters, digits, '_' or '-'");
            }
            for (Function other : functions) {
                if (other.name().equals(name)) {
                    throw ApiException.invalid(path + ".function.name", "function '" + name + "' is defined twice");
                }
            }
            JsonNode params = fn.get("parameters");
            SchemaNode compiled;
            try {
                compiled = JsonSchemaCompiler.compile(params == null
                        ? JsonNodeFactory.instance.objectNode().put("type", "object") : params);
            } catch (JsonSchemaCompiler.SchemaException e) {
                throw ApiException.invalid(path + ".function.parameters", path + ".function.parameters: "
                        + e.getMessage() + " at " + e.pointer);
            }
            functions.add(new Function(name, compiled));
        }
        String choice = "auto";
        if (choiceNode != null) {
            if (choiceNode.isTextual()) {
                choice = choiceNode.textValue();
                if (!choice.equals("none") && !choice.equals("auto") && !choice.equals("required")) {
                    throw ApiException.invalid("tool_choice", "'tool_choice' is '" + choice + "', expected 'none', "
                            + "'auto', 'required' or {\"type\":\"function\",\"function\":{\"name\":…}}");
                }
            } else {
                JsonFields c = JsonFields.of(choiceNode, "tool_choice");
                String type = c.requireString("type");
                if (!type.equals("function")) {
                    throw ApiException.invalid("tool_choice.type", "'tool_choice.type' is '" + type
                            + "', expected 'function'");
                }
                choice = JsonFields.of(c.get("function"), "tool_choice.function").requireString("name");
                String wanted = choice;
                if (functions.stream().noneMatch(fn -> fn.name().equals(wanted))) {
                    throw ApiException.invalid("tool_choice.function.name", "'tool_choice' names function '" + choice
                            + "', which is not among 'tools'");
                }
            }
        }
        List<?> value = MAPPER.convertValue(tools, List.class);
        return new Setup(List.copyOf(functions), Format.of(template), choice, value);
    }

    /** The grammar of one forced call (to any function for {@code required}, else to the named one). */
    static SchemaGrammar grammar(Setup s) {
        var calls = new ArrayList<SchemaNode>();
        for (Function fn : s.functions()) {
            if (s.choice().equals("required") || s.choice().equals(fn.name())) {
                calls.add(callNode(fn, s.format().argumentsKey));
            }
        }
        SchemaNode call;
        if (calls.size() == 1) {
            call = calls.getFirst();
        } else {
            call = new SchemaNode("#tool_call");
            call.kind = SchemaNode.Kind.ALTERNATIVES;
            call.alternatives = calls;
            call.minLength_ = calls.stream().mapToInt(SchemaNode::shortest).min().orElse(SchemaNode.INFINITE);
        }
        if (s.format() == Format.HERMES) {
            return new SchemaGrammar(List.of(new SchemaGrammar.Text("<tool_call>\n".getBytes(StandardCharsets.UTF_8)),
                    new SchemaGrammar.Value(call),
                    new SchemaGrammar.Text("\n</tool_call>".getBytes(StandardCharsets.UTF_8))));
        }
        return new SchemaGrammar(call);
    }

    /** {@code {"name": <const>, <argumentsKey>: <parameters>}}, both required, nothing else. */
    private static SchemaNode callNode(Function fn, String argumentsKey) {
        var name = new SchemaNode("#tool_call/name");
        name.kind = SchemaNode.Kind.LITERALS;
        name.literals = List.of(JsonSchemaCompiler.compact(JsonNodeFactory.instance.textNode(fn.name())));
        name.minLength_ = name.literals.getFirst().length;
        var n = new SchemaNode("#tool_call");
        n.types = SchemaNode.OBJECT;
        n.names = new String[] {"name", argumentsKey};
        n.quotedNames = new byte[][] {"\"name\"".getBytes(StandardCharsets.UTF_8),
            ("\"" + argumentsKey + "\"").getBytes(StandardCharsets.UTF_8)};
        n.properties = new SchemaNode[] {name, fn.parameters()};
        n.required = new boolean[] {true, true};
        n.additional = null;
        n.minLength_ = JsonSchemaCompiler.shortestObject(n);
        return n;
    }

    /**
     * Reads tool calls out of the model's text. Calls to functions not in the request, or whose JSON does not parse,
     * are not calls: the text then stays content.
     */
    static Parsed parse(String text, Setup s) {
        if (s.format() == Format.HERMES && text.contains("<tool_call>")) {
            var calls = new ArrayList<Call>();
            Matcher m = HERMES_CALL.matcher(text);
            var content = new StringBuilder();
            int last = 0;
            while (m.find()) {
                Call c = call(m.group(1), s);
                if (c == null) {
                    return new Parsed(text, List.of());
                }
                calls.add(c);
                content.append(text, last, m.start());
                last = m.end();
            }
            content.append(text.substring(last));
            String rest = content.toString().strip();
            return new Parsed(rest.isEmpty() ? null : rest, List.copyOf(calls));
        }
        String t = text.strip();
        if (t.startsWith("<|python_tag|>")) {
            t = t.substring("<|python_tag|>".length()).strip();
        }
        if (t.startsWith("{")) {
            Call c = call(t, s);
            if (c != null) {
                return new Parsed(null, List.of(c));
            }
        }
        return new Parsed(text, List.of());
    }

    private static Call call(String json, Setup s) {
        JsonNode node;
        try {
            node = MAPPER.readTree(json);
        } catch (java.io.IOException e) {
            return null;
        }
        if (node == null || !node.isObject() || !node.path("name").isTextual()) {
            return null;
        }
        String name = node.get("name").textValue();
        if (s.functions().stream().noneMatch(fn -> fn.name().equals(name))) {
            return null;
        }
        JsonNode args = node.has("arguments") ? node.get("arguments") : node.get("parameters");
        if (args == null) {
            args = JsonNodeFactory.instance.objectNode();
        }
        String arguments;
        if (args.isTextual()) {
            arguments = args.textValue();
        } else {
            arguments = new String(JsonSchemaCompiler.compact(args), StandardCharsets.UTF_8);
        }
        return new Call("call_" + UUID.randomUUID().toString().replace("-", "").substring(0, 24), name, arguments);
    }
}
