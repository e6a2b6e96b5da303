package aether.llm.chat;

import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/**
 * Source-to-source fixes applied before Jinjava parses a template, so that it reads as Jinja2 reads it:
 * <ul>
 *   <li><b>trim_blocks / lstrip_blocks</b> done here rather than by Jinjava, whose own trimming drops the eaten
 *       newlines from its line count (errors then name a line dozens too early in a long template). A newline that
 *       trim_blocks eats after {@code %}} or {@code #}} becomes the empty comment <code>{#&#92;n#}</code>: it renders
 *       nothing and keeps every later line number exact. Whitespace that lstrip_blocks removes before a block tag is
 *       on the same line, so no line changes. {@code {%+} and {@code +%}} switch them off per tag, as in Jinja.</li>
 *   <li><b>unary not</b>: {@code not X} becomes {@code not (X)}, so it binds as in Python, looser than comparisons,
 *       {@code in} and {@code is} tests, tighter than {@code and}/{@code or}. Jinjava binds it to the nearest operand,
 *       so {@code not add_generation_prompt is defined} would mean {@code (not x) is defined}: always true, which
 *       silently drops the generation prompt of DeepSeek's templates.</li>
 *   <li><b>string escapes</b> Jinjava's lexer lacks ({@link #stringLiteral}).</li>
 * </ul>
 * Only characters within a line are added or removed, never a line break, so line numbers stay the original's.
 */
final class TemplateRewriter {

    /** Words after which a {@code not} is unary (an operator or a tag keyword precedes it). */
    private static final Set<String> BEFORE_UNARY = Set.of("and", "or", "not", "if", "elif", "else", "in", "return");
    /** Words that end the operand of a unary {@code not}. */
    private static final Set<String> ENDS_OPERAND = Set.of("and", "or", "if", "else");

    /** What a newline eaten by trim_blocks becomes: a comment that renders nothing but still counts the line. */
    static final String TRIMMED_NEWLINE = "{#\n#}";

    private TemplateRewriter() {}

    static String rewrite(String template) {
        var out = new StringBuilder(template.length() + 64);
        int i = 0;
        int n = template.length();
        while (i < n) {
            int open = nextOpen(template, i);
            if (open < 0) {
                out.append(template, i, n);
                break;
            }
            out.append(template, i, open);
            char kind = template.charAt(open + 1);
            boolean block = kind != '{';
            int contentStart = open + 2;
            boolean keepIndent = block && contentStart < n && template.charAt(contentStart) == '+';
            if (keepIndent) {
                contentStart++;
            } else if (block && !(contentStart < n && template.charAt(contentStart) == '-')) {
                lstrip(out);
            }
            String closer = kind == '{' ? "}}" : kind == '%' ? "%}" : "#}";
            int close = kind == '#' ? template.indexOf(closer, contentStart) : findClose(template, contentStart, closer);
            if (close < 0) {       // unterminated: leave it for the parser to report with its line
                out.append(template, open, n);
                break;
            }
            String content = template.substring(contentStart, close);
            boolean keepNewline = block && content.endsWith("+");
            if (keepNewline) {
                content = content.substring(0, content.length() - 1);
            }
            out.append(template, open, open + 2);
            out.append(kind == '#' ? content : expression(content));
            out.append(closer);
            i = close + 2;
            boolean trimmedByTag = content.endsWith("-");
            if (block && !keepNewline && !trimmedByTag && i < n && template.charAt(i) == '\n') {
                out.append(TRIMMED_NEWLINE);      // trim_blocks: eat the newline, keep the line count
                i++;
            }
        }
        return out.toString();
    }

    /** A filter ({@code x | name}) or test ({@code x is name}) a template uses, with its 1-based line. */
    record NameUse(String name, boolean isTest, int line) {}

    /** Every filter and test name used in the tags of {@code template}, for checking them at compile time. */
    static List<NameUse> filtersAndTests(String template) {
        var uses = new ArrayList<NameUse>();
        int i = 0;
        while (true) {
            int open = nextOpen(template, i);
            if (open < 0 || template.charAt(open + 1) == '#') {
                if (open < 0) {
                    return uses;
                }
                int end = template.indexOf("#}", open + 2);
                if (end < 0) {
                    return uses;
                }
                i = end + 2;
                continue;
            }
            String closer = template.charAt(open + 1) == '{' ? "}}" : "%}";
            int close = findClose(template, open + 2, closer);
            if (close < 0) {
                return uses;
            }
            int line = 1 + (int) template.substring(0, open).chars().filter(c -> c == '\n').count();
            scanNames(template.substring(open + 2, close), line, uses);
            i = close + 2;
        }
    }

    private static void scanNames(String e, int line, List<NameUse> uses) {
        String prevWord = null;
        boolean afterPipe = false;
        int i = 0;
        while (i < e.length()) {
            char c = e.charAt(i);
            if (c == '\'' || c == '"') {
                i = skipString(e, i, e.length());
                prevWord = null;
                afterPipe = false;
            } else if (c == '\n') {
                line++;
                i++;
            } else if (Character.isWhitespace(c)) {
                i++;
            } else if (isWordStart(c)) {
                int end = i;
                while (end < e.length() && (Character.isLetterOrDigit(e.charAt(end)) || e.charAt(end) == '_')) {
                    end++;
                }
                String word = e.substring(i, end);
                if (afterPipe) {
                    uses.add(new NameUse(word, false, line));
                } else if ("is".equals(prevWord) && !word.equals("not")) {
                    uses.add(new NameUse(word, true, line));
                }
                afterPipe = false;
                prevWord = "is".equals(prevWord) && word.equals("not") ? "is" : word;
                i = end;
            } else {
                afterPipe = c == '|';
                prevWord = null;
                i++;
            }
        }
    }

    /** lstrip_blocks: drops spaces and tabs between the start of the current line and a block tag. */
    private static void lstrip(StringBuilder out) {
        int k = out.length();
        while (k > 0 && (out.charAt(k - 1) == ' ' || out.charAt(k - 1) == '\t')) {
            k--;
        }
        if (k == 0 || out.charAt(k - 1) == '\n' || endsWith(out, k, TRIMMED_NEWLINE)) {
            out.setLength(k);
        }
    }

    private static boolean endsWith(StringBuilder out, int end, String suffix) {
        return end >= suffix.length() && out.substring(end - suffix.length(), end).equals(suffix);
    }

    private static int nextOpen(String s, int from) {
        for (int i = s.indexOf('{', from); i >= 0 && i + 1 < s.length(); i = s.indexOf('{', i + 1)) {
            char c = s.charAt(i + 1);
            if (c == '{' || c == '%' || c == '#') {
                return i;
            }
        }
        return -1;
    }

    /** The closer's index, skipping string literals; -1 if none. */
    private static int findClose(String s, int from, String closer) {
        char quote = 0;
        for (int i = from; i < s.length() - 1; i++) {
            char c = s.charAt(i);
            if (quote != 0) {
                if (c == '\\') {
                    i++;
                } else if (c == quote) {
                    quote = 0;
                }
            } else if (c == '\'' || c == '"') {
                quote = c;
            } else if (s.startsWith(closer, i)) {
                return i;
            }
        }
        return -1;
    }

    /** Rewrites one tag's content: unary {@code not} and Python string escapes. */
    static String expression(String e) {
        if (!e.contains("not") && e.indexOf('\\') < 0) {
            return e;
        }
        var out = new StringBuilder(e.length() + 8);
        rewriteRange(e, 0, e.length(), out);
        return out.toString();
    }

    /**
     * A string literal in the escapes Jinjava's lexer knows ({@code \n \t \r \\ \' \"}), from Python's:
     * <code>&#92;xNN</code>, <code>&#92;uNNNN</code>, <code>&#92;UNNNNNNNN</code>, octal and {@code \a \b \f \v} become the characters,
     * an unknown escape keeps its backslash (as Python does), and a backslash-newline (line continuation, Mistral
     * Small 3.1 writes its system prompt so) splits the literal into a parenthesised concatenation across the same
     * line break, so that line numbers still hold.
     */
    static String stringLiteral(String lit) {
        if (lit.indexOf('\\') < 0 || lit.length() < 2) {
            return lit;
        }
        char q = lit.charAt(0);
        var out = new StringBuilder(lit.length() + 8);
        out.append(q);
        boolean split = false;
        int end = lit.charAt(lit.length() - 1) == q ? lit.length() - 1 : lit.length();
        for (int i = 1; i < end; i++) {
            char c = lit.charAt(i);
            if (c != '\\' || i + 1 >= end) {
                out.append(c);
                continue;
            }
            char d = lit.charAt(++i);
            switch (d) {
                case 'n', 't', 'r', '\\', '\'', '"' -> out.append('\\').append(d);
                case '\n' -> {
                    out.append(q).append(" ~\n").append(q);
                    split = true;
                }
                case 'x' -> i = codePoint(lit, i, 2, 16, out, q);
                case 'u' -> i = codePoint(lit, i, 4, 16, out, q);
                case 'U' -> i = codePoint(lit, i, 8, 16, out, q);
                case 'a' -> out.append('\u0007');
                case 'b' -> out.append('\b');
                case 'f' -> out.append('\f');
                case 'v' -> out.append('\u000b');
                case '0', '1', '2', '3', '4', '5', '6', '7' -> i = codePoint(lit, i - 1, 3, 8, out, q);
                default -> out.append("\\\\").append(d);
            }
        }
        out.append(q);
        return split ? "(" + out + ")" : out.toString();
    }

    /** Decodes up to {@code digits} digits after index {@code at}; returns the index of the last one consumed. */
    private static int codePoint(String lit, int at, int digits, int radix, StringBuilder out, char q) {
        int value = 0;
        int k = at + 1;
        int limit = Math.min(lit.length() - 1, at + 1 + digits);
        while (k < limit && Character.digit(lit.charAt(k), radix) >= 0) {
            value = value * radix + Character.digit(lit.charAt(k), radix);
            k++;
        }
        if (k == at + 1 || (radix == 16 && k - at - 1 != digits) || !Character.isValidCodePoint(value)) {
            out.append("\\\\").append(lit.charAt(at));      // not a valid escape: keep it literally
            return at;
        }
        switch (value) {
            case '\n' -> out.append("\\n");
            case '\r' -> out.append("\\r");
            case '\t' -> out.append("\\t");
            case '\\' -> out.append("\\\\");
            default -> {
                if (value == q) {
                    out.append('\\');
                }
                out.appendCodePoint(value);
            }
        }
        return k - 1;
    }

    private static void rewriteRange(String e, int from, int to, StringBuilder out) {
        String prevWord = null;
        boolean prevIsOperand = false;
        int i = from;
        while (i < to) {
            char c = e.charAt(i);
            if (c == '\'' || c == '"') {
                int end = skipString(e, i, to);
                out.append(stringLiteral(e.substring(i, end)));
                i = end;
                prevIsOperand = true;
                prevWord = null;
                continue;
            }
            if (Character.isWhitespace(c)) {
                out.append(c);
                i++;
                continue;
            }
            if (isWordStart(c)) {
                int end = i;
                while (end < to && isWordPart(e.charAt(end))) {
                    end++;
                }
                String word = e.substring(i, end);
                boolean unary = word.equals("not") && !"is".equals(prevWord)
                        && (!prevIsOperand || (prevWord != null && BEFORE_UNARY.contains(prevWord)));
                if (unary) {
                    int operandEnd = operandEnd(e, end, to);
                    int trimmed = operandEnd;
                    while (trimmed > end && Character.isWhitespace(e.charAt(trimmed - 1))) {
                        trimmed--;
                    }
                    int start = end;
                    while (start < trimmed && Character.isWhitespace(e.charAt(start))) {
                        start++;
                    }
                    out.append("not ").append('(');
                    rewriteRange(e, start, trimmed, out);
                    out.append(')');
                    out.append(e, trimmed, operandEnd);
                    i = operandEnd;
                    prevIsOperand = true;
                    prevWord = null;
                    continue;
                }
                out.append(word);
                i = end;
                prevWord = word;
                prevIsOperand = !BEFORE_UNARY.contains(word) && !word.equals("is");
                continue;
            }
            out.append(c);
            i++;
            prevWord = null;
            prevIsOperand = c == ')' || c == ']' || c == '}' || Character.isDigit(c);
        }
    }

    /** Where the operand of a unary not that starts at {@code from} ends. */
    private static int operandEnd(String e, int from, int to) {
        int depth = 0;
        int i = from;
        while (i < to) {
            char c = e.charAt(i);
            if (c == '\'' || c == '"') {
                i = skipString(e, i, to);
                continue;
            }
            if (c == '(' || c == '[' || c == '{') {
                depth++;
            } else if (c == ')' || c == ']' || c == '}') {
                if (depth == 0) {
                    return i;
                }
                depth--;
            } else if (depth == 0 && (c == ',' || c == ':' || c == '-' && i + 1 < to && e.charAt(i + 1) == '%')) {
                return i;
            } else if (depth == 0 && isWordStart(c) && (i == 0 || !isWordPart(e.charAt(i - 1)))) {
                int end = i;
                while (end < to && isWordPart(e.charAt(end))) {
                    end++;
                }
                if (ENDS_OPERAND.contains(e.substring(i, end))) {
                    return i;
                }
                i = end;
                continue;
            }
            i++;
        }
        // A trailing whitespace-control '-' belongs to the tag, not the operand.
        int end = to;
        int k = end;
        while (k > from && Character.isWhitespace(e.charAt(k - 1))) {
            k--;
        }
        if (k > from && (e.charAt(k - 1) == '-' || e.charAt(k - 1) == '+')) {
            return k - 1;
        }
        return end;
    }

    private static int skipString(String e, int i, int to) {
        char quote = e.charAt(i);
        for (int j = i + 1; j < to; j++) {
            char c = e.charAt(j);
            if (c == '\\') {
                j++;
            } else if (c == quote) {
                return j + 1;
            }
        }
        return to;
    }

    private static boolean isWordStart(char c) {
        return Character.isLetter(c) || c == '_';
    }

    private static boolean isWordPart(char c) {
        return Character.isLetterOrDigit(c) || c == '_' || c == '.';
    }
}
