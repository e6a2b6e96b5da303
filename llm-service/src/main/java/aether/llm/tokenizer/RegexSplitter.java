package aether.llm.tokenizer;

import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Port of llama.cpp's {@code unicode_regex_split}: applies a list of pre-tokenizer regexes in turn, each one splitting
 * the pieces the previous one left (text between matches is kept as pieces of its own). The GPT-2 and LLaMA-3 regexes
 * run as llama.cpp's hand-written splitters, whose results differ from a regex engine in corner cases. Any other regex
 * that uses {@code \p{..}} runs on llama.cpp's "collapsed" text, in which every non-ASCII code point is replaced by one
 * marker character for its category (so {@code \p{N}} means {@code [0-9]} plus non-ASCII numbers, and ASCII
 * characters keep their literal meaning); regexes without categories run on the code points with non-ASCII whitespace
 * replaced by U+000B. Java's regex engine is backtracking with ordered alternation like ECMAScript's; {@code $} is
 * rewritten to {@code \z} because ECMAScript's {@code $} does not match before a final line terminator.
 *
 * <p>Immutable and thread-safe; each call allocates its own working arrays.
 */
final class RegexSplitter {

    static final String GPT2 = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)";
    static final String LLAMA3_ORIGINAL = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
    static final String LLAMA3 = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

    /** Marker characters of the collapsed text (llama.cpp uses the same byte values). */
    private static final char OTHER_MARK = '\u00D0';
    private static final char WHITESPACE_MARK = '\u000B';

    private static final Map<String, Integer> CATEGORIES = Map.of(
            "\\p{N}", Unicode.NUMBER, "\\p{L}", Unicode.LETTER, "\\p{P}", Unicode.PUNCTUATION,
            "\\p{M}", Unicode.MARK, "\\p{S}", Unicode.SYMBOL, "\\p{Lu}", Unicode.LETTER, "\\p{Ll}", Unicode.LETTER,
            "\\p{Lt}", Unicode.LETTER, "\\p{Lm}", Unicode.LETTER, "\\p{Lo}", Unicode.LETTER);

    private sealed interface Step {}
    private record Gpt2() implements Step {}
    private record Llama3() implements Step {}
    private record Collapsed(Pattern pattern) implements Step {}
    private record Wide(Pattern pattern) implements Step {}
    private record Run(ClassRun run) implements Step {}

    private final List<String> expressions;
    private final Step[] steps;

    RegexSplitter(List<String> expressions) {
        this(expressions, true);
    }

    /**
     * @param custom use hand-written splitters where they exist: llama.cpp's for the GPT-2 and LLaMA-3 regexes, and
     *               {@link ClassRun} for plain character-class runs; false runs every regex through java.util.regex
     *               (tests compare the two)
     */
    RegexSplitter(List<String> expressions, boolean custom) {
        this.expressions = List.copyOf(expressions);
        this.steps = new Step[expressions.size()];
        for (int i = 0; i < steps.length; i++) {
            steps[i] = compile(expressions.get(i), custom);
        }
    }

    List<String> expressions() {
        return expressions;
    }

    private static Step compile(String expr, boolean custom) {
        if (custom && expr.equals(GPT2)) {
            return new Gpt2();
        }
        if (custom && (expr.equals(LLAMA3_ORIGINAL) || expr.equals(LLAMA3))) {
            return new Llama3();
        }
        boolean categories = CATEGORIES.keySet().stream().anyMatch(expr::contains);
        if (categories) {
            if (expr.chars().anyMatch(c -> c >= 128)) {
                throw new IllegalArgumentException(
                        "regex '%s' mixes unicode categories and non-ASCII characters, which llama.cpp does not support"
                                .formatted(expr));
            }
            return new Collapsed(Pattern.compile(dollarToEnd(collapseRegex(expr))));
        }
        Pattern pattern = Pattern.compile(dollarToEnd(expr)); // compiled even when unused: validates the regex
        if (custom) {
            var run = ClassRun.of(expr);
            if (run.isPresent()) {
                return new Run(run.get());
            }
        }
        return new Wide(pattern);
    }

    /** llama.cpp's rewrite of {@code \p{X}} into the marker of X plus the ASCII members of X. */
    static String collapseRegex(String re) {
        StringBuilder sb = new StringBuilder(re.length() * 2);
        boolean inside = false;
        for (int i = 0; i < re.length(); i++) {
            char c = re.charAt(i);
            if (c == '[' && (i == 0 || re.charAt(i - 1) != '\\')) {
                sb.append('[');
                inside = true;
                continue;
            }
            if (inside && c == ']' && re.charAt(i - 1) != '\\') {
                sb.append(']');
                inside = false;
                continue;
            }
            if (c == '\\' && i + 3 < re.length() && re.charAt(i + 1) == 'p' && re.charAt(i + 2) == '{') {
                int close = re.indexOf('}', i + 3);
                if (close >= 0 && close <= i + 10) {
                    Integer category = CATEGORIES.get(re.substring(i, close + 1));
                    if (category != null) {
                        if (!inside) {
                            sb.append('[');
                        }
                        sb.append(marker(category)).append(asciiMembers(category));
                        if (!inside) {
                            sb.append(']');
                        }
                        i = close;
                        continue;
                    }
                }
            }
            sb.append(c);
        }
        return sb.toString();
    }

    private static char marker(int category) {
        return switch (category) {
            case Unicode.NUMBER -> '\u00D1';
            case Unicode.LETTER -> '\u00D2';
            case Unicode.PUNCTUATION -> '\u00D3';
            case Unicode.MARK -> '\u00D4';
            case Unicode.SYMBOL -> '\u00D5';
            default -> OTHER_MARK;
        };
    }

    /** The ASCII members llama.cpp lists for each category; note '~' is in none of them. */
    private static String asciiMembers(int category) {
        return switch (category) {
            case Unicode.NUMBER -> "0-9";
            case Unicode.LETTER -> "A-Za-z";
            case Unicode.PUNCTUATION -> "!-#%-*,-/:-;?-@\\[-\\]_\\{\\}";
            case Unicode.SYMBOL -> "\\$\\+<->^`\\|";
            default -> "";
        };
    }

    /** Rewrites unescaped {@code $} outside character classes to {@code \z} (ECMAScript end of input). */
    private static String dollarToEnd(String re) {
        StringBuilder sb = new StringBuilder(re.length() + 4);
        boolean inside = false;
        for (int i = 0; i < re.length(); i++) {
            char c = re.charAt(i);
            if (c == '\\' && i + 1 < re.length()) {
                sb.append(c).append(re.charAt(++i));
                continue;
            }
            if (c == '[') {
                inside = true;
            } else if (c == ']') {
                inside = false;
            } else if (c == '$' && !inside) {
                sb.append("\\z");
                continue;
            }
            sb.append(c);
        }
        return sb.toString();
    }

    /** Splits {@code cpts} into pieces; returns their lengths in code points, in order, summing to cpts.length. */
    IntList split(int[] cpts) {
        IntList offsets = new IntList(8);
        if (cpts.length == 0) {
            return offsets;
        }
        offsets.add(cpts.length);
        String collapsed = null;
        for (Step step : steps) {
            IntList next = new IntList(offsets.size() * 2 + 8);
            switch (step) {
                case Gpt2 g -> splitGpt2(cpts, offsets, next);
                case Llama3 l -> splitLlama3(cpts, offsets, next);
                case Collapsed c -> {
                    if (collapsed == null) {
                        collapsed = collapse(cpts);
                    }
                    splitRegex(c.pattern(), collapsed, null, offsets, next);
                }
                case Run r -> {
                    int[] wide = wideCodePoints(cpts);
                    int start = 0;
                    for (int k = 0; k < offsets.size(); k++) {
                        r.run().split(wide, start, start + offsets.get(k), next);
                        start += offsets.get(k);
                    }
                }
                case Wide w -> {
                    StringBuilder sb = new StringBuilder(cpts.length + 8);
                    boolean supplementary = false;
                    for (int cp : cpts) {
                        int v = cp > 0x7F && Unicode.isWhitespace(cp) ? WHITESPACE_MARK : cp;
                        supplementary |= v > 0xFFFF;
                        sb.appendCodePoint(v);
                    }
                    splitRegex(w.pattern(), sb.toString(), supplementary ? charToCodePoint(sb) : null, offsets, next);
                }
            }
            offsets = next;
        }
        return offsets;
    }

    /** The code points with non-ASCII whitespace replaced by U+000B, the text llama.cpp's wregex path sees. */
    private static int[] wideCodePoints(int[] cpts) {
        int[] out = new int[cpts.length];
        for (int i = 0; i < cpts.length; i++) {
            int cp = cpts[i];
            out[i] = cp > 0x7F && Unicode.isWhitespace(cp) ? WHITESPACE_MARK : cp;
        }
        return out;
    }

    private static String collapse(int[] cpts) {
        char[] out = new char[cpts.length];
        for (int i = 0; i < cpts.length; i++) {
            int cp = cpts[i];
            if (cp < 128) {
                out[i] = (char) cp;
                continue;
            }
            int flags = Unicode.flags(cp);
            if ((flags & Unicode.WHITESPACE) != 0) {
                out[i] = WHITESPACE_MARK;
            } else {
                out[i] = marker(flags & Unicode.CATEGORY_MASK);
            }
        }
        return new String(out);
    }

    /** For text with surrogate pairs: the code point index of each char index (and of the end). */
    private static int[] charToCodePoint(CharSequence s) {
        int[] map = new int[s.length() + 1];
        int cp = 0;
        for (int i = 0; i < s.length(); i++) {
            map[i] = cp;
            if (!(Character.isHighSurrogate(s.charAt(i)) && i + 1 < s.length()
                    && Character.isLowSurrogate(s.charAt(i + 1)))) {
                cp++;
            } else {
                map[++i] = cp++;
            }
        }
        map[s.length()] = cp;
        return map;
    }

    /** As llama.cpp's {@code unicode_regex_split_stl}: matches and the gaps between them become pieces. */
    private static void splitRegex(Pattern pattern, String text, int[] charToCp, IntList offsets, IntList out) {
        int[] cpToChar = null;
        if (charToCp != null) {
            cpToChar = new int[charToCp[text.length()] + 1];
            for (int i = text.length(); i >= 0; i--) {
                cpToChar[charToCp[i]] = i;
            }
        }
        Matcher m = pattern.matcher(text);
        int start = 0;
        for (int k = 0; k < offsets.size(); k++) {
            int offset = offsets.get(k);
            int from = cpToChar == null ? start : cpToChar[start];
            int to = cpToChar == null ? start + offset : cpToChar[start + offset];
            m.region(from, to);
            int startIdx = start;
            while (m.find()) {
                int ms = charToCp == null ? m.start() : charToCp[m.start()];
                int me = charToCp == null ? m.end() : charToCp[m.end()];
                if (ms > startIdx) {
                    out.add(ms - startIdx);
                }
                if (me > ms) { // an empty match (a lookahead) only cuts: llama.cpp's empty piece tokenizes to nothing
                    out.add(me - ms);
                }
                startIdx = me;
            }
            if (startIdx < start + offset) {
                out.add(start + offset - startIdx);
            }
            start += offset;
        }
    }

    /** llama.cpp's {@code unicode_regex_split_custom_gpt2}. */
    private static void splitGpt2(int[] cpts, IntList offsets, IntList out) {
        int start = 0;
        for (int k = 0; k < offsets.size(); k++) {
            final int ini = start;
            final int end = start + offsets.get(k);
            start = end;
            int prevEnd = ini;
            for (int pos = ini; pos < end; ) {
                final int cpt = cpts[pos];
                final int flags = Unicode.flags(cpt);
                if (cpt == '\'' && pos + 1 < end) {
                    int next = cpts[pos + 1];
                    if (next == 's' || next == 't' || next == 'm' || next == 'd') {
                        prevEnd = addPiece(out, prevEnd, pos + 2);
                        pos += 2;
                        continue;
                    }
                    if (pos + 2 < end) {
                        int nextNext = cpts[pos + 2];
                        if ((next == 'r' && nextNext == 'e') || (next == 'v' && nextNext == 'e')
                                || (next == 'l' && nextNext == 'l')) {
                            prevEnd = addPiece(out, prevEnd, pos + 3);
                            pos += 3;
                            continue;
                        }
                    }
                }
                int flags2 = cpt == ' ' ? flagsAt(cpts, ini, end, pos + 1) : flags;
                if ((flags2 & Unicode.LETTER) != 0) {
                    pos += cpt == ' ' ? 1 : 0;
                    while ((flags2 & Unicode.LETTER) != 0) {
                        flags2 = flagsAt(cpts, ini, end, ++pos);
                    }
                    prevEnd = addPiece(out, prevEnd, pos);
                    continue;
                }
                if ((flags2 & Unicode.NUMBER) != 0) {
                    pos += cpt == ' ' ? 1 : 0;
                    while ((flags2 & Unicode.NUMBER) != 0) {
                        flags2 = flagsAt(cpts, ini, end, ++pos);
                    }
                    prevEnd = addPiece(out, prevEnd, pos);
                    continue;
                }
                if (isOther(flags2)) {
                    pos += cpt == ' ' ? 1 : 0;
                    while (isOther(flags2)) {
                        flags2 = flagsAt(cpts, ini, end, ++pos);
                    }
                    prevEnd = addPiece(out, prevEnd, pos);
                    continue;
                }
                int spaces = 0;
                while ((flagsAt(cpts, ini, end, pos + spaces) & Unicode.WHITESPACE) != 0) {
                    spaces++;
                }
                if (spaces > 1 && pos + spaces < end) { // \s+(?!\S)
                    pos += spaces - 1;
                    prevEnd = addPiece(out, prevEnd, pos);
                    continue;
                }
                if (spaces > 0) { // \s+
                    pos += spaces;
                    prevEnd = addPiece(out, prevEnd, pos);
                    continue;
                }
                prevEnd = addPiece(out, prevEnd, ++pos); // no match
            }
        }
    }

    /** llama.cpp's {@code unicode_regex_split_custom_llama3}. */
    private static void splitLlama3(int[] cpts, IntList offsets, IntList out) {
        int start = 0;
        for (int k = 0; k < offsets.size(); k++) {
            final int ini = start;
            final int end = start + offsets.get(k);
            start = end;
            int prevEnd = ini;
            for (int pos = ini; pos < end; ) {
                final int cpt = cpts[pos];
                final int flags = Unicode.flags(cpt);
                if (cpt == '\'' && pos + 1 < end) { // (?i:'s|'t|'re|'ve|'m|'ll|'d)
                    int next = Unicode.toLower(cpts[pos + 1]);
                    if (next == 's' || next == 't' || next == 'm' || next == 'd') {
                        prevEnd = addPiece(out, prevEnd, pos + 2);
                        pos += 2;
                        continue;
                    }
                    if (pos + 2 < end) {
                        int nextNext = Unicode.toLower(cpts[pos + 2]);
                        if ((next == 'r' && nextNext == 'e') || (next == 'v' && nextNext == 'e')
                                || (next == 'l' && nextNext == 'l')) {
                            prevEnd = addPiece(out, prevEnd, pos + 3);
                            pos += 3;
                            continue;
                        }
                    }
                }
                if (!(cpt == '\r' || cpt == '\n' || (flags & Unicode.NUMBER) != 0)) { // [^\r\n\p{L}\p{N}]?\p{L}+
                    if ((flags & Unicode.LETTER) != 0 || (flagsAt(cpts, ini, end, pos + 1) & Unicode.LETTER) != 0) {
                        pos++;
                        while ((flagsAt(cpts, ini, end, pos) & Unicode.LETTER) != 0) {
                            pos++;
                        }
                        prevEnd = addPiece(out, prevEnd, pos);
                        continue;
                    }
                }
                if ((flags & Unicode.NUMBER) != 0) { // \p{N}{1,3}
                    int first = pos;
                    while ((flagsAt(cpts, ini, end, pos) & Unicode.NUMBER) != 0) {
                        if (++pos - first >= 3) {
                            prevEnd = addPiece(out, prevEnd, pos);
                            first = pos;
                        }
                    }
                    prevEnd = addPiece(out, prevEnd, pos);
                    continue;
                }
                int flags2 = cpt == ' ' ? flagsAt(cpts, ini, end, pos + 1) : flags;
                if ((flags2 & (Unicode.WHITESPACE | Unicode.LETTER | Unicode.NUMBER)) == 0 && flags != 0) {
                    pos += cpt == ' ' ? 1 : 0; //  ?[^\s\p{L}\p{N}]+[\r\n]*
                    while (isOther(flags2)) {
                        flags2 = flagsAt(cpts, ini, end, ++pos);
                    }
                    while (pos < end && (cpts[pos] == '\r' || cpts[pos] == '\n')) {
                        pos++;
                    }
                    prevEnd = addPiece(out, prevEnd, pos);
                    continue;
                }
                int spaces = 0;
                int lastEndOfLine = 0;
                while ((flagsAt(cpts, ini, end, pos + spaces) & Unicode.WHITESPACE) != 0) {
                    int c = cpts[pos + spaces];
                    if (c == '\r' || c == '\n') {
                        lastEndOfLine = pos + spaces + 1;
                    }
                    spaces++;
                }
                if (lastEndOfLine > 0) { // \s*[\r\n]+
                    pos = lastEndOfLine;
                    prevEnd = addPiece(out, prevEnd, pos);
                    continue;
                }
                if (spaces > 1 && pos + spaces < end) { // \s+(?!\S)
                    pos += spaces - 1;
                    prevEnd = addPiece(out, prevEnd, pos);
                    continue;
                }
                if (spaces > 0) { // \s+
                    pos += spaces;
                    prevEnd = addPiece(out, prevEnd, pos);
                    continue;
                }
                prevEnd = addPiece(out, prevEnd, ++pos);
            }
        }
    }

    /** In range and neither whitespace, letter nor number ({@code [^\s\p{L}\p{N}]}); out of range has flags 0. */
    private static boolean isOther(int flags) {
        return flags != 0 && (flags & (Unicode.WHITESPACE | Unicode.LETTER | Unicode.NUMBER)) == 0;
    }

    private static int flagsAt(int[] cpts, int ini, int end, int pos) {
        return pos >= ini && pos < end ? Unicode.flags(cpts[pos]) : 0;
    }

    private static int addPiece(IntList out, int prevEnd, int end) {
        if (end > prevEnd) {
            out.add(end - prevEnd);
        }
        return end;
    }
}
