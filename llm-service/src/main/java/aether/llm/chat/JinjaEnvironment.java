package aether.llm.chat;

import com.hubspot.jinjava.Jinjava;
import com.hubspot.jinjava.JinjavaConfig;
import com.hubspot.jinjava.LegacyOverrides;
import com.hubspot.jinjava.el.JinjavaInterpreterResolver;
import com.hubspot.jinjava.interpret.JinjavaInterpreter;
import com.hubspot.jinjava.lib.exptest.ExpTest;
import com.hubspot.jinjava.lib.filter.AdvancedFilter;
import com.hubspot.jinjava.lib.fn.ELFunctionDefinition;
import com.hubspot.jinjava.lib.tag.ForTag;
import com.hubspot.jinjava.lib.tag.Tag;
import com.hubspot.jinjava.objects.collections.PyList;
import com.hubspot.jinjava.tree.Node;
import com.hubspot.jinjava.tree.TagNode;
import com.hubspot.jinjava.tree.parse.TagToken;
import com.hubspot.jinjava.util.ForLoop;
import com.hubspot.jinjava.util.ObjectIterator;
import com.hubspot.jinjava.util.ObjectTruthValue;
import java.time.Clock;
import java.time.ZonedDateTime;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import jinjava.javax.el.CompositeELResolver;

/**
 * The one Jinjava engine every {@link ChatTemplate} shares, configured like transformers' template environment
 * (its {@code trim_blocks} and {@code lstrip_blocks} are applied to the source by {@link TemplateRewriter}): dicts
 * iterate over keys, {@code {{- -}}} trims, no trailing newline kept, plus
 * <ul>
 *   <li>{@code raise_exception(msg)} and {@code strftime_now(fmt)} functions ({@code namespace(...)}, {@code range}
 *       and the {@code break}/{@code continue} loop controls are Jinjava's own);</li>
 *   <li>{@code tojson} as Python's {@code json.dumps} ({@link PythonJson});</li>
 *   <li>Python string and dict methods ({@link PythonMethods});</li>
 *   <li>loop filters {@code {% for x in xs if cond %}} (Jinjava parses the {@code if} as a conditional expression
 *       and ignores it), and transformers' {@code {% generation %}} block;</li>
 *   <li>the {@code items} filter, a Python {@code iterable} test (strings are) and values printed as Python's
 *       {@code str()} ({@link PythonStr});</li>
 *   <li>no nested interpretation: rendered text is never parsed again, so message text cannot run template code.</li>
 * </ul>
 * Jinjava is thread-safe once configured; per-render state lives in the interpreter and in {@link #RENDER_CLOCK}
 * and {@link #FAILURE}.
 */
final class JinjaEnvironment {

    static final Jinjava JINJAVA;
    static final JinjavaConfig CONFIG;

    /** The clock of the render running on this thread, for {@code strftime_now}. */
    static final ThreadLocal<Clock> RENDER_CLOCK = new ThreadLocal<>();

    static {
        var resolver = new CompositeELResolver();
        resolver.add(new PythonMethods());
        resolver.add(JinjavaInterpreterResolver.DEFAULT_RESOLVER_READ_ONLY);
        CONFIG = JinjavaConfig.newBuilder()
                .withTrimBlocks(false)         // TemplateRewriter does trim_blocks and lstrip_blocks,
                .withLstripBlocks(false)       // keeping line numbers exact
                .withKeepTrailingNewline(false)
                .withLegacyOverrides(LegacyOverrides.newBuilder()
                        .withIterateOverMapKeys(true)              // for k in dict: keys, as Python
                        .withEvaluateMapKeys(true)                 // {name: 1} uses the variable, as Jinja
                        .withUseNaturalOperatorPrecedence(true)    // 'a' + x | trim filters x only
                        .withParseWhitespaceControlStrictly(true)
                        .withUseTrimmingForNotesAndExpressions(true) // {{- x -}} and {#- -#} trim, not only {%- -%}
                        .withKeepNullableLoopValues(true)
                        .withUsePyishObjectMapper(true)            // {{ [1, 'a'] }} prints as Python would
                        .withHandleBackslashInQuotesOnly(true)     // Python string escapes
                        .withDefaultKeepTrailingNewlineBehavior(true)
                        .build())
                .withElResolver(resolver)
                .withMaxOutputSize(64L << 20)
                // Jinjava re-renders output that looks like a template by default: message text such as
                // "{{ raise_exception('x') }}" would run. Never for prompts built from user input.
                .withNestedInterpretationEnabled(false)
                .withEnableRecursiveMacroCalls(true)   // Jinja allows them (schema-rendering macros recurse)
                .withMaxMacroRecursionDepth(128)
                .withRangeLimit(100_000)       // transformers' sandbox MAX_RANGE; Jinjava's default (1000) truncates
                .build();
        JINJAVA = new Jinjava(CONFIG);
        JINJAVA.registerFunction(new ELFunctionDefinition("", "raise_exception", JinjaEnvironment.class,
                "raiseException", Object.class));
        JINJAVA.registerFunction(new ELFunctionDefinition("", "strftime_now", JinjaEnvironment.class,
                "strftimeNow", String.class));
        JINJAVA.registerFilter(new ToJson());
        JINJAVA.registerFilter(new Items());
        JINJAVA.registerFilter(new StringFilter());
        JINJAVA.registerExpTest(new IterableTest());
        JINJAVA.registerTag(new FilteringForTag());
        JINJAVA.registerTag(new GenerationTag());
    }

    private JinjaEnvironment() {}

    /**
     * A failure of our own code inside a render: {@code raise_exception}, or a Python method, filter or strftime
     * given bad arguments. Jinjava reports some exceptions from methods with a generic message of its own
     * ("Cannot find method"), so each failure is also recorded in {@link #FAILURE} for the render to report.
     */
    static final class Failure extends RuntimeException {
        final boolean raisedByTemplate;

        Failure(String message, boolean raisedByTemplate) {
            super(message, null, false, false);
            this.raisedByTemplate = raisedByTemplate;
        }
    }

    /** The first {@link Failure} of the render running on this thread, or null. */
    static final ThreadLocal<Failure> FAILURE = new ThreadLocal<>();

    static Failure fail(String message, boolean raisedByTemplate) {
        var f = new Failure(message, raisedByTemplate);
        if (FAILURE.get() == null) {
            FAILURE.set(f);
        }
        return f;
    }

    /**
     * Stand-ins bound as variables under the global functions' names, so that {@code strftime_now is defined} is true
     * as in Jinja (Llama 3.2 checks it); a call still resolves to the function.
     */
    record FunctionMarker(String name) {
        @Override
        public String toString() {
            return "<function " + name + ">";
        }
    }

    static final Map<String, Object> FUNCTION_MARKERS = Map.of(
            "raise_exception", new FunctionMarker("raise_exception"),
            "strftime_now", new FunctionMarker("strftime_now"),
            "namespace", new FunctionMarker("namespace"),
            "range", new FunctionMarker("range"));

    public static Object raiseException(Object message) {
        throw fail(String.valueOf(message), true);
    }

    public static String strftimeNow(String format) {
        Clock clock = RENDER_CLOCK.get();
        try {
            return Strftime.format(format, ZonedDateTime.now(clock != null ? clock : Clock.systemDefaultZone()));
        } catch (IllegalArgumentException e) {
            throw fail(e.getMessage(), false);
        }
    }

    /** {@code tojson(ensure_ascii=False, indent=None, separators=None, sort_keys=False)}, transformers' signature. */
    static final class ToJson implements AdvancedFilter {
        @Override
        public String getName() {
            return "tojson";
        }

        @Override
        public Object filter(Object value, JinjavaInterpreter interpreter, Object[] args, Map<String, Object> kwargs) {
            try {
                return dumps(value, args, kwargs);
            } catch (IllegalArgumentException e) {
                throw fail(e.getMessage(), false);
            }
        }

        private static String dumps(Object value, Object[] args, Map<String, Object> kwargs) {
            Object ensureAscii = kwargs.getOrDefault("ensure_ascii", args.length > 0 ? args[0] : false);
            Object indent = kwargs.getOrDefault("indent", args.length > 1 ? args[1] : null);
            Object separators = kwargs.getOrDefault("separators", args.length > 2 ? args[2] : null);
            Object sortKeys = kwargs.getOrDefault("sort_keys", args.length > 3 ? args[3] : false);
            String item = null;
            String key = null;
            if (separators instanceof List<?> l && l.size() == 2) {
                item = String.valueOf(l.get(0));
                key = String.valueOf(l.get(1));
            } else if (separators != null) {
                throw new IllegalArgumentException("tojson: separators must be a pair of strings, found " + separators);
            }
            int spaces = switch (indent) {
                case null -> -1;
                case Number n -> Math.max(0, n.intValue());
                case String s -> throw new IllegalArgumentException("tojson: string indent '" + s + "' not supported");
                default -> throw new IllegalArgumentException("tojson: indent must be an integer, found " + indent);
            };
            var options = PythonJson.Options.of(ObjectTruthValue.evaluate(ensureAscii), spaces, item, key,
                    ObjectTruthValue.evaluate(sortKeys));
            return PythonJson.dumps(value, options);
        }
    }

    /** Jinja's {@code items} filter: a dict's (key, value) pairs, so {@code for k, v in d | items} unpacks them. */
    static final class Items implements AdvancedFilter {
        @Override
        public String getName() {
            return "items";
        }

        @Override
        public Object filter(Object value, JinjavaInterpreter interpreter, Object[] args, Map<String, Object> kwargs) {
            return switch (value) {
                case null -> new PyList(new ArrayList<>());
                case Map<?, ?> m -> new PyList(new ArrayList<>(m.entrySet()));
                default -> throw fail("items: expected a mapping, found " + value.getClass().getSimpleName(), false);
            };
        }
    }

    /** {@code x | string}: Python's {@code str(x)}. */
    static final class StringFilter implements AdvancedFilter {
        @Override
        public String getName() {
            return "string";
        }

        @Override
        public Object filter(Object value, JinjavaInterpreter interpreter, Object[] args, Map<String, Object> kwargs) {
            return PythonStr.str(value);
        }
    }

    /**
     * The interpreter of one render: prints values as Python's {@code str()} ({@code True}, {@code ['a']}) where
     * Jinjava prints {@code true}, {@code [a]}.
     */
    static final class PythonInterpreter extends JinjavaInterpreter {
        PythonInterpreter(com.hubspot.jinjava.interpret.Context context) {
            super(JINJAVA, context, CONFIG);
        }

        @Override
        public String getAsString(Object value) {
            return PythonStr.str(value);
        }
    }

    /** Python's iterable: strings, lists and dicts are; Jinjava's own test says no for strings. */
    static final class IterableTest implements ExpTest {
        @Override
        public String getName() {
            return "iterable";
        }

        @Override
        public boolean evaluate(Object value, JinjavaInterpreter interpreter, Object... args) {
            return value instanceof CharSequence || value instanceof java.lang.Iterable<?> || value instanceof Map<?, ?>
                    || value != null && value.getClass().isArray();
        }
    }

    /** {@code {% for a, b in xs if cond %}}: filters first, so {@code loop.index} and {@code loop.last} count kept items. */
    static final class FilteringForTag extends ForTag {
        @Override
        public String interpretUnchecked(TagNode tagNode, JinjavaInterpreter interpreter) {
            var varsAndExpression = getLoopVarsAndExpression((TagToken) tagNode.getMaster());
            String expression = varsAndExpression.getRight();
            int at = topLevelIf(expression);
            if (at < 0) {
                return super.interpretUnchecked(tagNode, interpreter);
            }
            List<String> vars = varsAndExpression.getLeft();
            int line = tagNode.getLineNumber();
            Object collection = interpreter.resolveELExpression(expression.substring(0, at).trim(), line);
            String condition = expression.substring(at + 2).trim();
            var kept = new ArrayList<Object>();
            ForLoop items = ObjectIterator.getLoop(collection);
            var scope = interpreter.enterScope();     // the loop variables exist only while filtering
            try {
                while (items.hasNext()) {
                    Object item = interpreter.wrap(items.next());
                    bind(interpreter, vars, item);
                    if (ObjectTruthValue.evaluate(interpreter.resolveELExpression(condition, line))) {
                        kept.add(item);
                    }
                }
            } finally {
                scope.close();
            }
            return renderForCollection(tagNode, interpreter, vars, kept);
        }

        private static void bind(JinjavaInterpreter interpreter, List<String> vars, Object item) {
            var context = interpreter.getContext();
            if (vars.size() == 1) {
                context.put(vars.get(0), item);
                return;
            }
            for (int i = 0; i < vars.size(); i++) {
                Object v = switch (item) {
                    case Map.Entry<?, ?> e -> i == 0 ? e.getKey() : i == 1 ? e.getValue() : null;
                    case List<?> l -> i < l.size() ? l.get(i) : null;
                    case null, default -> null;
                };
                context.put(vars.get(i), v);
            }
        }

        /** Index of the keyword {@code if} outside strings and brackets, or -1. */
        static int topLevelIf(String s) {
            int depth = 0;
            char quote = 0;
            for (int i = 0; i < s.length(); i++) {
                char c = s.charAt(i);
                if (quote != 0) {
                    if (c == '\\') {
                        i++;
                    } else if (c == quote) {
                        quote = 0;
                    }
                    continue;
                }
                switch (c) {
                    case '\'', '"' -> quote = c;
                    case '(', '[', '{' -> depth++;
                    case ')', ']', '}' -> depth--;
                    case 'i' -> {
                        if (depth == 0 && s.startsWith("if", i) && i > 0 && !isNameChar(s.charAt(i - 1))
                                && (i + 2 == s.length() || !isNameChar(s.charAt(i + 2)))) {
                            return i;
                        }
                    }
                    default -> { }
                }
            }
            return -1;
        }

        private static boolean isNameChar(char c) {
            return Character.isLetterOrDigit(c) || c == '_' || c == '.';
        }
    }

    /** transformers' {@code {% generation %}...{% endgeneration %}}: marks assistant text for masks; renders its body. */
    static final class GenerationTag implements Tag {
        @Override
        public String getName() {
            return "generation";
        }

        @Override
        public String getEndTagName() {
            return "endgeneration";
        }

        @Override
        public String interpret(TagNode tagNode, JinjavaInterpreter interpreter) {
            var sb = new StringBuilder();
            for (Node child : tagNode.getChildren()) {
                sb.append(child.render(interpreter).getValue());
            }
            return sb.toString();
        }
    }
}
