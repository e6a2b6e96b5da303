package aether.llm.chat;

import java.lang.reflect.Array;
import java.math.BigDecimal;
import java.math.BigInteger;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Map;

/**
 * {@code json.dumps(value, ensure_ascii, indent, separators, sort_keys)} as Python writes it: the {@code tojson} of
 * transformers' template environment (not Jinja's HTML-safe one). Matters for prompts: models were trained on
 * {@code {"a": 1, "b": [1, 2]}} with Python's spaces, not on the compact form most Java JSON writers emit.
 */
final class PythonJson {

    record Options(boolean ensureAscii, int indent, String itemSeparator, String keySeparator, boolean sortKeys) {
        /** {@code indent < 0} means None (one line). Default separators follow Python: ", " only without indent. */
        static Options of(boolean ensureAscii, int indent, String itemSeparator, String keySeparator, boolean sortKeys) {
            String item = itemSeparator != null ? itemSeparator : indent >= 0 ? "," : ", ";
            String key = keySeparator != null ? keySeparator : ": ";
            return new Options(ensureAscii, indent, item, key, sortKeys);
        }
    }

    static final Options DEFAULT = Options.of(false, -1, null, null, false);

    private PythonJson() {}

    static String dumps(Object value, Options o) {
        var sb = new StringBuilder(64);
        write(sb, value, o, 0);
        return sb.toString();
    }

    private static void write(StringBuilder sb, Object v, Options o, int depth) {
        if (depth > 512) {
            throw new IllegalArgumentException("tojson: value nested deeper than 512 levels (a cycle?)");
        }
        switch (v) {
            case null -> sb.append("null");
            case CharSequence s -> string(sb, s.toString(), o.ensureAscii());
            case Character c -> string(sb, c.toString(), o.ensureAscii());
            case Boolean b -> sb.append(b ? "true" : "false");
            case Double d -> sb.append(floatRepr(d));
            case Float f -> sb.append(floatRepr(f.doubleValue()));
            case BigDecimal d -> sb.append(floatRepr(d.doubleValue()));
            case Long l -> sb.append(l.longValue());
            case Integer i -> sb.append(i.intValue());
            case Short s -> sb.append(s.shortValue());
            case Byte b -> sb.append(b.byteValue());
            case BigInteger i -> sb.append(i);
            case Map<?, ?> m -> object(sb, m, o, depth);
            case Collection<?> c -> array(sb, c, o, depth);
            default -> {
                if (v.getClass().isArray()) {
                    var list = new ArrayList<Object>(Array.getLength(v));
                    for (int i = 0; i < Array.getLength(v); i++) {
                        list.add(Array.get(v, i));
                    }
                    array(sb, list, o, depth);
                } else {
                    throw new IllegalArgumentException(
                            "tojson: Object of type " + v.getClass().getSimpleName() + " is not JSON serializable");
                }
            }
        }
    }

    private static void object(StringBuilder sb, Map<?, ?> m, Options o, int depth) {
        if (m.isEmpty()) {
            sb.append("{}");
            return;
        }
        Iterable<? extends Map.Entry<?, ?>> entries = m.entrySet();
        if (o.sortKeys()) {
            var sorted = new ArrayList<Map.Entry<?, ?>>(m.entrySet());
            sorted.sort((a, b) -> key(a.getKey()).compareTo(key(b.getKey())));
            entries = sorted;
        }
        sb.append('{');
        boolean first = true;
        for (Map.Entry<?, ?> e : entries) {
            if (!first) {
                sb.append(o.itemSeparator());
            }
            first = false;
            newline(sb, o, depth + 1);
            string(sb, key(e.getKey()), o.ensureAscii());
            sb.append(o.keySeparator());
            write(sb, e.getValue(), o, depth + 1);
        }
        newline(sb, o, depth);
        sb.append('}');
    }

    private static void array(StringBuilder sb, Collection<?> c, Options o, int depth) {
        if (c.isEmpty()) {
            sb.append("[]");
            return;
        }
        sb.append('[');
        boolean first = true;
        for (Object e : c) {
            if (!first) {
                sb.append(o.itemSeparator());
            }
            first = false;
            newline(sb, o, depth + 1);
            write(sb, e, o, depth + 1);
        }
        newline(sb, o, depth);
        sb.append(']');
    }

    private static void newline(StringBuilder sb, Options o, int depth) {
        if (o.indent() >= 0) {
            sb.append('\n');
            sb.repeat(' ', o.indent() * depth);
        }
    }

    /** Python converts str, int, float, bool and None keys; anything else is a TypeError. */
    private static String key(Object k) {
        return switch (k) {
            case null -> "null";
            case CharSequence s -> s.toString();
            case Boolean b -> b ? "true" : "false";
            case Double d -> floatRepr(d);
            case Float f -> floatRepr(f.doubleValue());
            case Number n -> n.toString();
            default -> throw new IllegalArgumentException(
                    "tojson: keys must be str, int, float, bool or None, not " + k.getClass().getSimpleName());
        };
    }

    static void string(StringBuilder sb, String s, boolean ensureAscii) {
        sb.append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"' -> sb.append("\\\"");
                case '\\' -> sb.append("\\\\");
                case '\n' -> sb.append("\\n");
                case '\r' -> sb.append("\\r");
                case '\t' -> sb.append("\\t");
                case '\b' -> sb.append("\\b");
                case '\f' -> sb.append("\\f");
                default -> {
                    if (c < 0x20 || (ensureAscii && c > 0x7e)) {
                        sb.append("\\u").append(HEX[c >> 12 & 0xF]).append(HEX[c >> 8 & 0xF])
                                .append(HEX[c >> 4 & 0xF]).append(HEX[c & 0xF]);
                    } else {
                        sb.append(c);
                    }
                }
            }
        }
        sb.append('"');
    }

    private static final char[] HEX = "0123456789abcdef".toCharArray();

    /**
     * Python's {@code repr(float)}: the shortest round-tripping digits (as Java's {@link Double#toString} since JDK
     * 19), positional for exponents in [-4, 16), else {@code 1e+16} style; {@code NaN}, {@code Infinity} as json.dumps.
     */
    static String floatRepr(double d) {
        if (Double.isNaN(d)) {
            return "NaN";
        }
        if (Double.isInfinite(d)) {
            return d > 0 ? "Infinity" : "-Infinity";
        }
        if (d == 0) {
            return (1 / d < 0) ? "-0.0" : "0.0";
        }
        BigDecimal b = new BigDecimal(Double.toString(d)).stripTrailingZeros();
        String digits = b.unscaledValue().abs().toString();
        int exp = digits.length() - 1 - b.scale();     // decimal exponent of the first digit
        var sb = new StringBuilder(24);
        if (d < 0) {
            sb.append('-');
        }
        if (exp >= -4 && exp < 16) {
            if (exp < 0) {
                sb.append("0.").repeat('0', -exp - 1).append(digits);
            } else if (digits.length() <= exp + 1) {
                sb.append(digits).repeat('0', exp + 1 - digits.length()).append(".0");
            } else {
                sb.append(digits, 0, exp + 1).append('.').append(digits, exp + 1, digits.length());
            }
        } else {
            sb.append(digits.charAt(0));
            if (digits.length() > 1) {
                sb.append('.').append(digits, 1, digits.length());
            }
            sb.append('e').append(exp < 0 ? '-' : '+');
            int a = Math.abs(exp);
            if (a < 10) {
                sb.append('0');
            }
            sb.append(a);
        }
        return sb.toString();
    }
}
