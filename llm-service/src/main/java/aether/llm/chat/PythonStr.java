package aether.llm.chat;

import java.lang.reflect.Array;
import java.math.BigDecimal;
import java.util.Collection;
import java.util.Map;

/**
 * Python's {@code str()} and {@code repr()} of template values, for what {@code {{ x }}} and {@code x | string} print:
 * {@code True}, {@code [1, 'a', None]}, {@code {'k': 2.0}}, where Jinjava would print {@code true}, {@code [1, a, ]}
 * and {@code {k=2.0}}; a prompt must look like what the model saw in training.
 */
final class PythonStr {

    private PythonStr() {}

    /**
     * {@code str(v)}, except that null prints empty: Jinjava resolves an undefined name to null, and Jinja prints an
     * undefined as nothing; printing a real None is almost always a template slip, which nothing prints as well.
     */
    static String str(Object v) {
        return v == null ? "" : v instanceof CharSequence s ? s.toString() : repr(v);
    }

    static String repr(Object v) {
        var sb = new StringBuilder();
        repr(sb, v, 0);
        return sb.toString();
    }

    private static void repr(StringBuilder sb, Object v, int depth) {
        if (depth > 256) {
            sb.append("...");
            return;
        }
        switch (v) {
            case null -> sb.append("None");
            case Boolean b -> sb.append(b ? "True" : "False");
            case CharSequence s -> quote(sb, s.toString());
            case Double d -> sb.append(PythonJson.floatRepr(d).replace("Infinity", "inf").replace("NaN", "nan"));
            case Float f -> sb.append(PythonJson.floatRepr(f.doubleValue()).replace("Infinity", "inf").replace("NaN", "nan"));
            case BigDecimal d -> sb.append(PythonJson.floatRepr(d.doubleValue()));
            case Number n -> sb.append(n);
            case Map.Entry<?, ?> e -> {      // dict items are (key, value) tuples
                sb.append('(');
                repr(sb, e.getKey(), depth + 1);
                sb.append(", ");
                repr(sb, e.getValue(), depth + 1);
                sb.append(')');
            }
            case Map<?, ?> m -> {
                sb.append('{');
                boolean first = true;
                for (Map.Entry<?, ?> e : m.entrySet()) {
                    if (!first) {
                        sb.append(", ");
                    }
                    first = false;
                    repr(sb, e.getKey(), depth + 1);
                    sb.append(": ");
                    repr(sb, e.getValue(), depth + 1);
                }
                sb.append('}');
            }
            case Collection<?> c -> {
                sb.append('[');
                boolean first = true;
                for (Object e : c) {
                    if (!first) {
                        sb.append(", ");
                    }
                    first = false;
                    repr(sb, e, depth + 1);
                }
                sb.append(']');
            }
            default -> {
                if (v.getClass().isArray()) {
                    sb.append('[');
                    for (int i = 0; i < Array.getLength(v); i++) {
                        if (i > 0) {
                            sb.append(", ");
                        }
                        repr(sb, Array.get(v, i), depth + 1);
                    }
                    sb.append(']');
                } else {
                    sb.append(v);
                }
            }
        }
    }

    /** Python's string repr: single quotes unless the text has a ' and no ". */
    private static void quote(StringBuilder sb, String s) {
        char q = s.indexOf('\'') >= 0 && s.indexOf('"') < 0 ? '"' : '\'';
        sb.append(q);
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '\\' -> sb.append("\\\\");
                case '\n' -> sb.append("\\n");
                case '\r' -> sb.append("\\r");
                case '\t' -> sb.append("\\t");
                default -> {
                    if (c == q) {
                        sb.append('\\').append(c);
                    } else if (c < 0x20 || c == 0x7f) {
                        sb.append("\\x").append(Character.forDigit(c >> 4, 16)).append(Character.forDigit(c & 0xF, 16));
                    } else {
                        sb.append(c);
                    }
                }
            }
        }
        sb.append(q);
    }
}
