package aether.llm.chat;

import java.util.Set;

/**
 * Rewrites {@code not X} to {@code not (X)} inside template tags, so the unary {@code not} binds as in Python: looser
 * than comparisons, {@code in} and {@code is} tests, tighter than {@code and}/{@code or}. Jinjava binds it to the
 * nearest operand, so {@code not add_generation_prompt is defined} means {@code (not x) is defined} there: always true,
 * which silently drops the generation prompt of DeepSeek's templates. The rewrite adds characters only (no newlines),
 * so line numbers in errors stay those of the original template.
 */
final class NotPrecedence {

    /** Words after which a {@code not} is unary (an operator or a tag keyword precedes it). */
    private static final Set<String> BEFORE_UNARY = Set.of("and", "or", "not", "if", "elif", "else", "in", "return");
    /** Words that end the operand of a unary {@code not}. */
    private static final Set<String> ENDS_OPERAND = Set.of("and", "or", "if", "else");

    private NotPrecedence() {}

    static String rewrite(String template) {
        if (!template.contains("not")) {
            return template;
        }
        var out = new StringBuilder(template.length() + 16);
        int i = 0;
        int n = template.length();
        while (i < n) {
            int open = nextOpen(template, i);
            if (open < 0) {
                out.append(template, i, n);
                break;
            }
            out.append(template, i, open + 2);
            char kind = template.charAt(open + 1);
            String closer = kind == '{' ? "}}" : kind == '%' ? "%}" : "#}";
            int close = kind == '#' ? template.indexOf(closer, open + 2) : findClose(template, open + 2, closer);
            if (close < 0) {       // unterminated: leave it for the parser to report with its line
                out.append(template, open + 2, n);
                break;
            }
            String content = template.substring(open + 2, close);
            out.append(kind == '#' ? content : expression(content));
            out.append(closer);
            i = close + 2;
        }
        return out.toString();
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

    /** Rewrites every unary {@code not} of one tag's content. */
    static String expression(String e) {
        if (!e.contains("not")) {
            return e;
        }
        var out = new StringBuilder(e.length() + 8);
        rewriteRange(e, 0, e.length(), out);
        return out.toString();
    }

    private static void rewriteRange(String e, int from, int to, StringBuilder out) {
        String prevWord = null;
        boolean prevIsOperand = false;
        int i = from;
        while (i < to) {
            char c = e.charAt(i);
            if (c == '\'' || c == '"') {
                int end = skipString(e, i, to);
                out.append(e, i, end);
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
