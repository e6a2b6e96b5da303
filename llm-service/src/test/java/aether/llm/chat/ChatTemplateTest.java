package aether.llm.chat;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import aether.llm.gguf.GgufArray;
import aether.llm.gguf.GgufFormatException;
import aether.llm.gguf.GgufMetadata;
import aether.llm.gguf.MetadataValue;
import java.time.Clock;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** Jinja features chat templates use, each checked against what Python Jinja2 (transformers' setup) renders. */
class ChatTemplateTest {

    private static final List<ChatMessage> CHAT = List.of(ChatMessage.system("sys"), ChatMessage.user("hi"),
            ChatMessage.assistant("hello"), ChatMessage.user("bye"));

    private static String render(String template) {
        return ChatTemplate.compile(template).render(CHAT, true);
    }

    private static String render(String template, Map<String, ?> extra) {
        return ChatTemplate.compile(template).render(CHAT, true, extra);
    }

    private static ChatTemplateException failure(String template) {
        try {
            ChatTemplate.compile(template).render(CHAT, true);
        } catch (ChatTemplateException e) {
            return e;
        }
        throw new AssertionError("expected a ChatTemplateException from " + template);
    }

    // ---- raise_exception ----

    @Test
    void shouldTurnRaiseExceptionIntoChatTemplateExceptionWithMessageAndLine() {
        var e = failure("{% for m in messages %}\n{% if m.role == 'system' %}\n"
                + "{{ raise_exception('System role not supported') }}\n{% endif %}\n{% endfor %}");

        assertThat(e.raisedByTemplate()).isTrue();
        assertThat(e.reason()).isEqualTo("System role not supported");
        assertThat(e.line()).isEqualTo(3);
        assertThat(e.getMessage()).isEqualTo("chat template 'default', line 3: raise_exception: System role not supported");
        assertThat(e.getStackTrace()).isEmpty();
        assertThat(e.getCause()).isNull();
    }

    @Test
    void shouldReportRaiseExceptionLinesAfterTrimmedBlocksAndComments() {
        String template = "{%- set x = 1 %}\n{%- if true %}\n    {%- set y = 2 %}\n{#- a comment\n spanning lines #}\n"
                + "{%- endif %}\n\n{{ raise_exception('late') }}";

        assertThat(failure(template).line()).isEqualTo(8);
    }

    @Test
    void shouldNotRaiseWhenTheBranchIsNotTaken() {
        assertThat(render("{% if messages|length > 10 %}{{ raise_exception('too long') }}{% endif %}ok")).isEqualTo("ok");
    }

    // ---- namespace, scoping, loops ----

    @Test
    void shouldCarryNamespaceAttributesOutOfLoops() {
        assertThat(render("{% set ns = namespace(count=0, last='', found=false) %}{% for m in messages %}"
                + "{% set ns.count = ns.count + 1 %}{% set ns.last = m.role %}"
                + "{% if m.role == 'system' %}{% set ns.found = true %}{% endif %}{% endfor %}"
                + "{{ ns.count }}:{{ ns.last }}:{{ ns.found }}")).isEqualTo("4:user:True");
    }

    @Test
    void shouldKeepPlainSetInsideALoopLocalAsJinjaDoes() {
        assertThat(render("{% set c = 0 %}{% for m in messages %}{% set c = c + 1 %}{% endfor %}{{ c }}")).isEqualTo("0");
    }

    @Test
    void shouldSupportBreakAndContinue() {
        assertThat(render("{% for m in messages %}{% if m.role == 'system' %}{% continue %}{% endif %}"
                + "{% if m.role == 'assistant' %}{% break %}{% endif %}{{ m.content }}{% endfor %}")).isEqualTo("hi");
        assertThat(render("{% for m in messages %}{% if loop.index is divisibleby 2 %}{% continue %}{% endif %}"
                + "{{ loop.index }}{% endfor %}")).isEqualTo("13");
    }

    @Test
    void shouldFilterLoopsBeforeCountingLoopIndexAndLast() {
        assertThat(render("{% for m in messages if m.role != 'system' %}{{ loop.index }}/{{ loop.length }}:{{ m.role }}"
                + "{% if not loop.last %},{% endif %}{% endfor %}")).isEqualTo("1/3:user,2/3:assistant,3/3:user");
    }

    @Test
    void shouldFilterDictItemLoops() {
        var d = new LinkedHashMap<String, Object>();
        d.put("name", "f");
        d.put("return", "x");
        d.put("description", "g");
        assertThat(render("{% for k, v in d.items() if k != 'return' %}{{ k }}={{ v }}{% if not loop.last %}, "
                + "{% endif %}{% endfor %}", Map.of("d", d))).isEqualTo("name=f, description=g");
        assertThat(render("{% for k, v in d | items %}{{ k }}{% endfor %}|{% for k in d %}{{ k }}{% endfor %}",
                Map.of("d", d))).isEqualTo("namereturndescription|namereturndescription");
    }

    @Test
    void shouldLoopOverLongConversationsAndRanges() {
        var messages = new ArrayList<ChatMessage>();
        for (int i = 0; i < 3000; i++) {
            messages.add(i % 2 == 0 ? ChatMessage.user("u") : ChatMessage.assistant("a"));
        }
        var t = ChatTemplate.compile("{% set ns = namespace(n=0) %}{% for i in range(0, messages|length) %}"
                + "{% set ns.n = ns.n + 1 %}{% endfor %}{{ ns.n }}|{{ range(5000) | list | length }}|{{ messages | length }}");
        assertThat(t.render(messages, false)).isEqualTo("3000|5000|3000");
    }

    @Test
    void shouldExposeLoopFirstLastIndex0AndNegativeIndexing() {
        assertThat(render("{% for m in messages %}{% if loop.first %}[{% endif %}{{ loop.index0 }}"
                + "{% if loop.last %}]{% endif %}{% endfor %}{{ messages[-1].content }}{{ messages[1:] | length }}"))
                .isEqualTo("[0123]bye3");
    }

    // ---- whitespace control ----

    @Test
    void shouldTrimBlocksAndLstripBlocksLikeTransformers() {
        assertThat(render("{% for m in messages %}\n    {% if m.role == 'user' %}\n{{ m.content }}\n    {% endif %}\n"
                + "{% endfor %}")).isEqualTo("hi\nbye\n");
    }

    @Test
    void shouldHonourDashWhitespaceControlOnExpressionsAndTags() {
        assertThat(render("a  \n  {{- 'x' -}}  \n b")).isEqualTo("axb");
        assertThat(render("{%- if true -%}\n   x   \n{%- endif -%}\n")).isEqualTo("x");
        assertThat(render("{% if true +%}\nx{% endif %}")).isEqualTo("\nx");
        assertThat(render("  {%+ if true %}x{% endif %}")).isEqualTo("  x");
    }

    // ---- Python semantics of expressions ----

    @Test
    void shouldBindUnaryNotLooserThanTestsAndComparisons() {
        assertThat(render("{{ not add_generation_prompt is defined }}|{{ not x is defined }}|{{ not 'x' in 'abc' }}"
                + "|{{ not 1 == 2 }}|{{ not false and false }}|{{ 'a' not in 'abc' }}|{{ y is not none }}"
                + "|{{ not y is none }}", Map.of("y", 1)))
                .isEqualTo("False|True|True|True|False|False|True|True");
    }

    @Test
    void shouldCallPythonStringMethods() {
        assertThat(render("{{ '  a b  '.strip() }}|{{ 'xxhixx'.strip('x') }}|{{ '\\n\\nz'.lstrip() }}|{{ 'z  '.rstrip() }}|"))
                .isEqualTo("a b|hi|z|z|");
        assertThat(render("{{ ' a b  '.split() }}|{{ 'a,,b'.split(',') }}|{{ 'a b c'.split(none, 1) }}|"
                + "{{ 'a,b,c'.rsplit(',', 1) }}|{{ 'a</think>b'.split('</think>')[-1] }}"))
                .isEqualTo("['a', 'b']|['a', '', 'b']|['a', 'b c']|['a,b', 'c']|b");
        assertThat(render("{{ 'tool_x'.startswith('tool') }}|{{ 'x.py'.endswith(('.js', '.py')) }}|"
                + "{{ \"hello world's 1st\".title() }}|{{ 'aaa'.replace('a', 'b', 2) }}|{{ 'Ab'.upper() }}{{ 'Ab'.lower() }}|"
                + "{{ ', '.join(['a', 'b']) }}|{{ 'abc'.find('c') }}"))
                .isEqualTo("True|True|Hello World'S 1St|bba|ABab|a, b|2");
    }

    @Test
    void shouldCallDictGetWithDefault() {
        assertThat(render("{{ d.get('a') }}|{{ d.get('zz', 'dflt') }}|{{ d.get('zz') is none }}|{{ d.keys() | list }}",
                Map.of("d", Map.of("a", 1)))).isEqualTo("1|dflt|True|['a']");
    }

    @Test
    void shouldTreatStringsAsIterableAndMappingsAsMappings() {
        assertThat(render("{{ 's' is iterable }}{{ [1] is iterable }}{{ d is mapping }}{{ 's' is string }}{{ 3 is string }}",
                Map.of("d", Map.of()))).isEqualTo("TrueTrueTrueTrueFalse");
    }

    @Test
    void shouldRenderUndefinedVariablesEmptyAndNotDefined() {
        assertThat(render("[{{ nothing }}]{{ nothing is defined }}{% if nothing %}T{% else %}F{% endif %}"
                + "{{ nothing | default('d') }}{{ messages[0].name is defined }}{{ messages[9] is defined }}"))
                .isEqualTo("[]FalseFdFalseFalse");
    }

    @Test
    void shouldSeeOptionalMessageKeysOnlyWhenPresent() {
        var messages = List.of(ChatMessage.tool("call_1", "get_weather", "18C"), ChatMessage.user("x"));
        String template = "{% for m in messages %}{{ m.role }}:{{ 'name' in m }}:{{ m.tool_call_id is defined }}"
                + ":{{ 'tool_calls' in m }};{% endfor %}";
        assertThat(ChatTemplate.compile(template).render(messages, false))
                .isEqualTo("tool:True:True:False;user:False:False:False;");
    }

    @Test
    void shouldPassToolCallArgumentsAsAStringWhenGivenAsJson() {
        var call = new ChatMessage.ToolCall("id1", "f", "{\"a\": 1}");
        String template = "{% for c in messages[0].tool_calls %}{{ c.id }} {{ c.type }} {{ c.function.name }} "
                + "{{ c.function.arguments }} {{ c.function.arguments is string }}{% endfor %}";
        assertThat(ChatTemplate.compile(template).render(List.of(ChatMessage.assistantToolCalls(List.of(call))), false))
                .isEqualTo("id1 function f {\"a\": 1} True");
        assertThatThrownBy(() -> new ChatMessage.ToolCall("id", "f", 42)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("expected: a Map or a JSON string");
    }

    @Test
    void shouldPrintValuesAsPythonStr() {
        var d = new LinkedHashMap<String, Object>();
        d.put("a", 1);
        d.put("b", java.util.Arrays.asList("it's", true, null, 2.0));
        assertThat(render("{{ d }}|{{ d.b }}|{{ true }}|{{ false }}|{{ 1.5 }}|{{ d | string }}|{{ [1, 'a'] }}",
                Map.of("d", d))).isEqualTo("{'a': 1, 'b': [\"it's\", True, None, 2.0]}|[\"it's\", True, None, 2.0]|True|False"
                + "|1.5|{'a': 1, 'b': [\"it's\", True, None, 2.0]}|[1, 'a']");
    }

    @Test
    void shouldReadPythonStringEscapes() {
        assertThat(render("{{ 'a\\u00e9\\x41\\U0001F600\\101' }}|{{ 'tab\\there' }}|{{ 'keep\\/it' }}|{{ \"it\\'s\" }}"))
                .isEqualTo("a\u00e9A\uD83D\uDE00A|tab\there|keep\\/it|it's");
    }

    @Test
    void shouldJoinBackslashNewlineContinuationsKeepingLineNumbers() {
        assertThat(render("{% set s = 'one \\\ntwo' %}[{{ s | upper }}]")).isEqualTo("[ONE TWO]");
        var e = failure("{% set s = 'one \\\ntwo' %}\n{{ raise_exception(s) }}");
        assertThat(e.line()).isEqualTo(3);
        assertThat(e.reason()).isEqualTo("one two");
    }

    @Test
    void shouldSupportTheCommonBuiltinFilters() {
        assertThat(render("{{ messages|map(attribute='role')|join(',') }}|"
                + "{{ messages|selectattr('role','eq','user')|map(attribute='content')|list }}|{{ (messages|last).content }}|"
                + "{{ '%d items'|format(3) }}|{{ [3,1,2]|sort|join }}|{{ {'b':1,'a':2}|dictsort }}|{{ 10 // 3 }}|{{ 7 / 2 }}"))
                .isEqualTo("system,user,assistant,user|['hi', 'bye']|bye|3 items|123|[('a', 2), ('b', 1)]|3|3.5");
    }

    @Test
    void shouldRenderGenerationBlocksAsTheirBody() {
        assertThat(render("{% generation %}{{ messages[2].content }}{% endgeneration %}")).isEqualTo("hello");
    }

    // ---- tojson ----

    @Test
    void shouldWriteJsonAsPythonJsonDumps() {
        var d = new LinkedHashMap<String, Object>();
        d.put("a", List.of(1, 2.5, new ArrayList<>(java.util.Collections.singletonList(null)), true));
        d.put("b", Map.of("c", "é\n\"\\\t\u0001"));
        d.put("d", List.of());
        d.put("e", Map.of());
        assertThat(render("{{ d | tojson }}", Map.of("d", d)))
                .isEqualTo("{\"a\": [1, 2.5, [null], true], \"b\": {\"c\": \"é\\n\\\"\\\\\\t\\u0001\"}, \"d\": [], \"e\": {}}");
    }

    @Test
    void shouldHonourTojsonIndentSortKeysSeparatorsAndEnsureAscii() {
        var d = new LinkedHashMap<String, Object>();
        d.put("b", 1);
        d.put("a", List.of(1, Map.of("x", List.of())));
        assertThat(render("{{ d | tojson(indent=2, sort_keys=true) }}", Map.of("d", d)))
                .isEqualTo("{\n  \"a\": [\n    1,\n    {\n      \"x\": []\n    }\n  ],\n  \"b\": 1\n}");
        assertThat(render("{{ {'a': 'é'} | tojson(ensure_ascii=true) }}|{{ [1, 2] | tojson(separators=(',', ':')) }}"))
                .isEqualTo("{\"a\": \"\\u00e9\"}|[1,2]");
    }

    @Test
    void shouldWriteFloatsAsPythonRepr() {
        assertThat(render("{{ [1.0, 0.1, 0.00001, 0.0001, 1e16, 1e15, 123456789.123, -2.5e-7, 1.5e300, 100.0] | tojson }}"))
                .isEqualTo("[1.0, 0.1, 1e-05, 0.0001, 1e+16, 1000000000000000.0, 123456789.123, -2.5e-07, 1.5e+300, 100.0]");
    }

    // ---- strftime_now ----

    @Test
    void shouldFormatStrftimeNowFromTheTemplateClock() {
        var t = ChatTemplate.compile("{{ strftime_now('%Y-%m-%d %H:%M:%S|%A %a %B %b|%j %y %p %I|%-d %e|%%|%U %W') }}")
                .withClock(Clock.fixed(Instant.parse("2026-03-05T14:07:09Z"), ZoneOffset.UTC));

        assertThat(t.render(CHAT, false)).isEqualTo("2026-03-05 14:07:09|Thursday Thu March Mar|064 26 PM 02|5  5|%|09 09");
    }

    @Test
    void shouldRejectAnUnknownStrftimeDirectiveNamingIt() {
        var e = failure("{{ strftime_now('%Q') }}");
        assertThat(e.getMessage()).contains("%Q").contains("line 1");
    }

    // ---- errors ----

    @Test
    void shouldReportASyntaxErrorAtCompileTimeWithLineAndColumn() {
        assertThatThrownBy(() -> ChatTemplate.compile("x", "line one\nline two\n  {% if messages %}\nno end", "", ""))
                .isInstanceOfSatisfying(ChatTemplateException.class, e -> {
                    assertThat(e.line()).isEqualTo(3);
                    assertThat(e.column()).isPositive();
                    assertThat(e.raisedByTemplate()).isFalse();
                    assertThat(e.getMessage()).startsWith("chat template 'x', line 3, column ")
                            .contains("endif").doesNotContain("com.hubspot");
                });
    }

    @Test
    void shouldReportAnUnknownTagAndAnUnknownFunctionWithTheirLines() {
        assertThat(failure("ok\n\n{% frobnicate %}").line()).isEqualTo(3);
        var e = failure("{% for m in messages %}\n{{ m.content }}\n{{ shout(m.content) }}\n{% endfor %}");
        assertThat(e.line()).isEqualTo(3);
        assertThat(e.reason()).contains("shout");
    }

    @Test
    void shouldRejectUnknownFiltersAndTestsAtCompileTimeAsJinjaDoes() {
        assertThatThrownBy(() -> ChatTemplate.compile("a\n{{ messages | frobnicate }}"))
                .isInstanceOfSatisfying(ChatTemplateException.class, e -> {
                    assertThat(e.line()).isEqualTo(2);
                    assertThat(e.reason()).isEqualTo("no filter named 'frobnicate'");
                });
        assertThatThrownBy(() -> ChatTemplate.compile("{% if x is not shiny %}{% endif %}"))
                .isInstanceOf(ChatTemplateException.class).hasMessageContaining("no test named 'shiny'");
        assertThat(render("{{ '|' ~ 'x | nope' }}{# y | nope #}{{ 'a' is not string }}")).isEqualTo("|x | nopeFalse");
    }

    @Test
    void shouldNeverInterpretMessageTextAsTemplate() {
        var t = ChatTemplate.compile("{% for m in messages %}[{{ m.content }}]{% endfor %}");
        String text = "{{ 7*7 }} {% if true %}yes{% endif %} {{ raise_exception('injected') }}";

        assertThat(t.render(List.of(ChatMessage.user(text)), false)).isEqualTo("[" + text + "]");
    }

    @Test
    void shouldAllowRecursiveMacrosButFailBeyondTheDepthLimit() {
        assertThat(render("{% macro f(n) %}{% if n > 0 %}{{ n }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(5) }}"))
                .isEqualTo("54321");
        var e = failure("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}\n{{ f(1) }}");
        assertThat(e.reason()).contains("recursion");
    }

    @Test
    void shouldReportAMethodFailureWithTheTemplateLine() {
        var e = failure("{% if true %}\n{{ 'a'.split('') }}\n{% endif %}");
        assertThat(e.line()).isEqualTo(2);
        assertThat(e.getMessage()).contains("empty separator").doesNotContain("\tat ");
    }

    // ---- GGUF ----

    private static GgufMetadata.Builder vocab() {
        return GgufMetadata.builder()
                .putArray("tokenizer.ggml.tokens", GgufArray.ofStrings(List.of("<unk>", "<|bos|>", "<|eos|>", "a")))
                .putUInt32("tokenizer.ggml.bos_token_id", 1)
                .putUInt32("tokenizer.ggml.eos_token_id", 2);
    }

    @Test
    void shouldReadDefaultAndNamedTemplatesWithSpecialTokensFromGguf() {
        var md = vocab().putString("tokenizer.chat_template", "{{ bos_token }}{{ messages[0].content }}{{ eos_token }}")
                .putString("tokenizer.chat_template.tool_use", "tools:{{ tools | length }}")
                .build();

        assertThat(ChatTemplate.templateNames(md)).containsExactly("default", "tool_use");
        var t = ChatTemplate.fromGguf(md).orElseThrow();
        assertThat(t.render(List.of(ChatMessage.user("x")), false)).isEqualTo("<|bos|>x<|eos|>");
        assertThat(t.render(List.of(ChatMessage.user("x")), false, Map.of("bos_token", "")))
                .isEqualTo("x<|eos|>");
        var named = ChatTemplate.fromGguf(md, "tool_use").orElseThrow();
        assertThat(named.name()).isEqualTo("tool_use");
        assertThat(named.render(List.of(), false, Map.of("tools", List.of(1, 2)))).isEqualTo("tools:2");
        assertThat(ChatTemplate.fromGguf(md, "rag")).isEmpty();
    }

    @Test
    void shouldReturnEmptyWithoutATemplateAndEmptyTokensWithoutIds() {
        assertThat(ChatTemplate.fromGguf(vocab().build())).isEmpty();
        var t = ChatTemplate.fromGguf(GgufMetadata.builder().putString("tokenizer.chat_template", "[{{ bos_token }}]").build())
                .orElseThrow();
        assertThat(t.render(List.of(), false)).isEqualTo("[]");
    }

    @Test
    void shouldRejectASpecialTokenIdOutsideTheVocabulary() {
        var md = vocab().set("tokenizer.ggml.eos_token_id", MetadataValue.Str.of("2"))
                .putString("tokenizer.chat_template", "x").build();
        assertThatThrownBy(() -> ChatTemplate.fromGguf(md)).isInstanceOf(GgufFormatException.class)
                .hasMessageContaining("tokenizer.ggml.eos_token_id");
        var outOfRange = GgufMetadata.builder()
                .putArray("tokenizer.ggml.tokens", GgufArray.ofStrings(List.of("a")))
                .putUInt32("tokenizer.ggml.bos_token_id", 7)
                .putString("tokenizer.chat_template", "x").build();
        assertThatThrownBy(() -> ChatTemplate.fromGguf(outOfRange)).isInstanceOf(GgufFormatException.class)
                .hasMessageContaining("token id 7 is outside the vocabulary of 1 tokens");
    }

    // ---- concurrency ----

    @Test
    @Timeout(60)
    void shouldRenderOneCompiledTemplateFromManyThreads() throws Exception {
        var t = ChatTemplate.compile("{% set ns = namespace(n=0) %}{% for m in messages %}{% set ns.n = ns.n + 1 %}"
                + "<{{ m.role }}:{{ m.content | trim }}>{% endfor %}{{ ns.n }}{{ strftime_now('%Y') }}")
                .withClock(Clock.fixed(Instant.parse("2026-03-05T14:07:09Z"), ZoneOffset.UTC));
        ExecutorService pool = Executors.newFixedThreadPool(4);
        try {
            var futures = new ArrayList<Future<Boolean>>();
            for (int task = 0; task < 8; task++) {
                int k = task;
                futures.add(pool.submit(() -> {
                    for (int i = 0; i < 200; i++) {
                        var messages = List.of(ChatMessage.user("u" + k + "-" + i), ChatMessage.assistant(" a" + i + " "));
                        String expected = "<user:u" + k + "-" + i + "><assistant:a" + i + ">22026";
                        if (!t.render(messages, false).equals(expected)) {
                            return false;
                        }
                    }
                    return true;
                }));
            }
            for (var f : futures) {
                assertThat(f.get()).isTrue();
            }
        } finally {
            pool.shutdownNow();
            assertThat(pool.awaitTermination(10, TimeUnit.SECONDS)).isTrue();
        }
    }
}
