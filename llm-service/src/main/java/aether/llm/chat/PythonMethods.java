package aether.llm.chat;

import com.hubspot.jinjava.objects.collections.PyList;
import java.beans.FeatureDescriptor;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Iterator;
import java.util.Map;
import jinjava.javax.el.ELContext;
import jinjava.javax.el.ELResolver;

/**
 * Python's {@code str} and {@code dict} methods for template expressions ({@code content.strip()},
 * {@code role.startswith('tool')}, {@code text.split('</think>')[-1]}, {@code d.get('k', 'x')}), which Jinjava would
 * otherwise look up as Java methods (absent, or with Java semantics: {@code String.split} takes a regex). Placed first
 * in the resolver chain; it resolves only the methods it knows, on {@code String} and {@code Map} bases, and leaves
 * everything else to Jinjava. Stateless and thread-safe.
 */
final class PythonMethods extends ELResolver {

    @Override
    public Object invoke(ELContext context, Object base, Object method, Class<?>[] paramTypes, Object[] params) {
        if (!(method instanceof String name)) {
            return null;
        }
        Object[] args = params == null ? new Object[0] : params;
        Object result;
        try {
            if (base instanceof String s) {
                result = stringMethod(s, name, args);
            } else if (base instanceof Map<?, ?> m) {
                result = mapMethod(m, name, args);
            } else {
                return null;
            }
        } catch (IllegalArgumentException e) {
            throw JinjaEnvironment.fail(e.getMessage(), false);
        }
        if (result == NOT_HANDLED) {
            return null;
        }
        context.setPropertyResolved(true);
        return result;
    }

    private static final Object NOT_HANDLED = new Object();

    private static Object stringMethod(String s, String name, Object[] a) {
        return switch (name) {
            case "strip" -> strip(s, chars(name, a), true, true);
            case "lstrip" -> strip(s, chars(name, a), true, false);
            case "rstrip" -> strip(s, chars(name, a), false, true);
            case "startswith" -> affix(s, name, a, true);
            case "endswith" -> affix(s, name, a, false);
            case "split" -> split(s, a.length > 0 ? str(name, a[0], true) : null, a.length > 1 ? integer(name, a[1]) : -1);
            case "rsplit" -> rsplit(s, a.length > 0 ? str(name, a[0], true) : null, a.length > 1 ? integer(name, a[1]) : -1);
            case "splitlines" -> new PyList(new ArrayList<>(s.lines().toList()));
            case "upper" -> s.toUpperCase(java.util.Locale.ROOT);
            case "lower" -> s.toLowerCase(java.util.Locale.ROOT);
            case "title" -> title(s);
            case "capitalize" -> s.isEmpty() ? s
                    : s.substring(0, 1).toUpperCase(java.util.Locale.ROOT) + s.substring(1).toLowerCase(java.util.Locale.ROOT);
            case "replace" -> replace(s, str(name, arg(name, a, 0), false), str(name, arg(name, a, 1), false),
                    a.length > 2 ? integer(name, a[2]) : -1);
            case "find" -> (long) s.indexOf(str(name, arg(name, a, 0), false));
            case "rfind" -> (long) s.lastIndexOf(str(name, arg(name, a, 0), false));
            case "count" -> count(s, str(name, arg(name, a, 0), false));
            case "join" -> join(s, arg(name, a, 0));
            case "removeprefix" -> {
                String p = str(name, arg(name, a, 0), false);
                yield s.startsWith(p) ? s.substring(p.length()) : s;
            }
            case "removesuffix" -> {
                String p = str(name, arg(name, a, 0), false);
                yield s.endsWith(p) && !p.isEmpty() ? s.substring(0, s.length() - p.length()) : s;
            }
            case "isdigit" -> !s.isEmpty() && s.chars().allMatch(Character::isDigit);
            case "isalpha" -> !s.isEmpty() && s.chars().allMatch(Character::isLetter);
            case "isalnum" -> !s.isEmpty() && s.chars().allMatch(Character::isLetterOrDigit);
            case "isspace" -> !s.isEmpty() && s.chars().allMatch(PythonMethods::isSpace);
            case "isupper" -> s.chars().anyMatch(Character::isLetter) && s.equals(s.toUpperCase(java.util.Locale.ROOT));
            case "islower" -> s.chars().anyMatch(Character::isLetter) && s.equals(s.toLowerCase(java.util.Locale.ROOT));
            default -> NOT_HANDLED;
        };
    }

    private static Object mapMethod(Map<?, ?> m, String name, Object[] a) {
        return switch (name) {
            case "get" -> {
                Object key = arg(name, a, 0);
                Object v = m.get(key);
                yield v != null || m.containsKey(key) ? v : a.length > 1 ? a[1] : null;
            }
            case "keys" -> new PyList(new ArrayList<>(m.keySet()));
            case "values" -> new PyList(new ArrayList<>(m.values()));
            default -> NOT_HANDLED;
        };
    }

    private static Object arg(String method, Object[] a, int i) {
        if (i >= a.length) {
            throw new IllegalArgumentException(method + "() takes at least " + (i + 1) + " argument(s), got " + a.length);
        }
        return a[i];
    }

    private static String str(String method, Object v, boolean nullable) {
        if (v == null && nullable) {
            return null;
        }
        if (v instanceof String s) {
            return s;
        }
        throw new IllegalArgumentException(method + "(): expected a string argument, found "
                + (v == null ? "None" : v.getClass().getSimpleName()));
    }

    private static int integer(String method, Object v) {
        if (v instanceof Number n && n.doubleValue() == n.longValue()) {
            return (int) Math.max(Integer.MIN_VALUE, Math.min(Integer.MAX_VALUE, n.longValue()));
        }
        throw new IllegalArgumentException(method + "(): expected an integer argument, found " + v);
    }

    private static String chars(String method, Object[] a) {
        return a.length == 0 ? null : str(method, a[0], true);
    }

    /** Python's str.isspace for one char. */
    static boolean isSpace(int c) {
        return Character.isWhitespace(c) || Character.isSpaceChar(c) || c == 0x85;
    }

    static String strip(String s, String chars, boolean left, boolean right) {
        int b = 0;
        int e = s.length();
        if (left) {
            while (b < e && stripped(s.charAt(b), chars)) {
                b++;
            }
        }
        if (right) {
            while (e > b && stripped(s.charAt(e - 1), chars)) {
                e--;
            }
        }
        return s.substring(b, e);
    }

    private static boolean stripped(char c, String chars) {
        return chars == null ? isSpace(c) : chars.indexOf(c) >= 0;
    }

    private static boolean affix(String s, String method, Object[] a, boolean prefix) {
        Object p = arg(method, a, 0);
        if (p instanceof Collection<?> options) {   // str.startswith(('a', 'b')): a tuple is a list here
            for (Object o : options) {
                if (prefix ? s.startsWith(str(method, o, false)) : s.endsWith(str(method, o, false))) {
                    return true;
                }
            }
            return false;
        }
        String x = str(method, p, false);
        return prefix ? s.startsWith(x) : s.endsWith(x);
    }

    static PyList split(String s, String sep, int maxSplit) {
        var out = new ArrayList<Object>();
        if (sep == null) {       // runs of whitespace, no empty strings
            int i = 0;
            int n = s.length();
            while (true) {
                while (i < n && isSpace(s.charAt(i))) {
                    i++;
                }
                if (i >= n) {
                    break;
                }
                if (maxSplit >= 0 && out.size() == maxSplit) {
                    out.add(strip(s.substring(i), null, false, true));
                    break;
                }
                int j = i;
                while (j < n && !isSpace(s.charAt(j))) {
                    j++;
                }
                out.add(s.substring(i, j));
                i = j;
            }
            return new PyList(out);
        }
        if (sep.isEmpty()) {
            throw new IllegalArgumentException("split(): empty separator");
        }
        int from = 0;
        while (maxSplit < 0 || out.size() < maxSplit) {
            int at = s.indexOf(sep, from);
            if (at < 0) {
                break;
            }
            out.add(s.substring(from, at));
            from = at + sep.length();
        }
        out.add(s.substring(from));
        return new PyList(out);
    }

    static PyList rsplit(String s, String sep, int maxSplit) {
        if (maxSplit < 0) {
            return split(s, sep, -1);
        }
        if (sep == null) {
            var parts = new ArrayList<Object>();
            int e = s.length();
            while (true) {
                while (e > 0 && isSpace(s.charAt(e - 1))) {
                    e--;
                }
                if (e == 0) {
                    break;
                }
                if (parts.size() == maxSplit) {
                    parts.add(strip(s.substring(0, e), null, true, false));
                    break;
                }
                int b = e;
                while (b > 0 && !isSpace(s.charAt(b - 1))) {
                    b--;
                }
                parts.add(s.substring(b, e));
                e = b;
            }
            java.util.Collections.reverse(parts);
            return new PyList(parts);
        }
        if (sep.isEmpty()) {
            throw new IllegalArgumentException("rsplit(): empty separator");
        }
        var parts = new ArrayList<Object>();
        int end = s.length();
        while (parts.size() < maxSplit) {
            int at = s.lastIndexOf(sep, end - sep.length());
            if (at < 0) {
                break;
            }
            parts.add(s.substring(at + sep.length(), end));
            end = at;
        }
        parts.add(s.substring(0, end));
        java.util.Collections.reverse(parts);
        return new PyList(parts);
    }

    static String title(String s) {
        var sb = new StringBuilder(s.length());
        boolean prevCased = false;
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            sb.append(prevCased ? Character.toLowerCase(c) : Character.toUpperCase(c));
            prevCased = Character.isLetter(c);
        }
        return sb.toString();
    }

    private static String replace(String s, String old, String with, int count) {
        if (count < 0) {
            return s.replace(old, with);
        }
        var sb = new StringBuilder(s.length());
        int from = 0;
        for (int done = 0; done < count; done++) {
            int at = s.indexOf(old, from);
            if (at < 0) {
                break;
            }
            sb.append(s, from, at).append(with);
            from = at + old.length();
            if (old.isEmpty()) {
                if (from < s.length()) {
                    sb.append(s.charAt(from));
                }
                from++;
            }
        }
        if (from <= s.length()) {
            sb.append(s, from, s.length());
        }
        return sb.toString();
    }

    private static long count(String s, String sub) {
        if (sub.isEmpty()) {
            return s.length() + 1L;
        }
        long n = 0;
        for (int at = s.indexOf(sub); at >= 0; at = s.indexOf(sub, at + sub.length())) {
            n++;
        }
        return n;
    }

    private static String join(String sep, Object items) {
        if (!(items instanceof Iterable<?> it)) {
            throw new IllegalArgumentException("join(): expected an iterable, found " + items);
        }
        var sb = new StringBuilder();
        boolean first = true;
        for (Object o : it) {
            if (!first) {
                sb.append(sep);
            }
            first = false;
            sb.append(str("join", o, false));
        }
        return sb.toString();
    }

    // ---- the rest of ELResolver: this resolver only invokes methods ----

    @Override
    public Object getValue(ELContext context, Object base, Object property) {
        return null;
    }

    @Override
    public Class<?> getType(ELContext context, Object base, Object property) {
        return null;
    }

    @Override
    public void setValue(ELContext context, Object base, Object property, Object value) {}

    @Override
    public boolean isReadOnly(ELContext context, Object base, Object property) {
        return false;
    }

    @Override
    public Iterator<FeatureDescriptor> getFeatureDescriptors(ELContext context, Object base) {
        return null;
    }

    @Override
    public Class<?> getCommonPropertyType(ELContext context, Object base) {
        return null;
    }
}
