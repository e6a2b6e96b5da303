package aether.llm.tokenizer;

import java.text.Normalizer;

/**
 * Code point classes as llama.cpp's {@code unicode.cpp} sees them: one general-category flag per code point (from the
 * JDK's Unicode tables, which may be a newer Unicode version than llama.cpp's generated tables; only code points
 * assigned in between differ), the Unicode {@code White_Space} property, simple lower-casing and llama.cpp's "NFD",
 * which keeps only the first code point of the canonical decomposition.
 */
final class Unicode {

    static final int UNDEFINED = 0x0001;
    static final int NUMBER = 0x0002;
    static final int LETTER = 0x0004;
    static final int SEPARATOR = 0x0008;
    static final int MARK = 0x0010;
    static final int PUNCTUATION = 0x0020;
    static final int SYMBOL = 0x0040;
    static final int CONTROL = 0x0080;
    static final int CATEGORY_MASK = 0x00FF;
    static final int WHITESPACE = 0x0100;

    static final int MAX_CODEPOINT = 0x10FFFF;

    /** Flags of the Basic Multilingual Plane, computed once; other planes are computed on demand. */
    private static final short[] BMP = new short[0x10000];

    static {
        for (int cp = 0; cp < BMP.length; cp++) {
            BMP[cp] = (short) compute(cp);
        }
    }

    private Unicode() {}

    /** The flags of {@code cp}; {@link #UNDEFINED} for values outside the code space. */
    static int flags(int cp) {
        if (cp >= 0 && cp < BMP.length) {
            return BMP[cp];
        }
        return cp >= 0 && cp <= MAX_CODEPOINT ? compute(cp) : UNDEFINED;
    }

    static boolean isWhitespace(int cp) {
        return (flags(cp) & WHITESPACE) != 0;
    }

    /** Simple lower-case mapping, as llama.cpp's {@code unicode_tolower}. */
    static int toLower(int cp) {
        return Character.toLowerCase(cp);
    }

    /** llama.cpp's {@code unicode_cpts_normalize_nfd} for one code point: the first code point of its NFD form. */
    static int nfdFirst(int cp) {
        if (cp < 0xC0) {
            return cp; // nothing below U+00C0 decomposes
        }
        String s = Character.toString(cp);
        if (Normalizer.isNormalized(s, Normalizer.Form.NFD)) {
            return cp;
        }
        return Normalizer.normalize(s, Normalizer.Form.NFD).codePointAt(0);
    }

    private static int compute(int cp) {
        int category = switch (Character.getType(cp)) {
            case Character.UNASSIGNED -> UNDEFINED;
            case Character.CONTROL, Character.FORMAT, Character.PRIVATE_USE, Character.SURROGATE -> CONTROL;
            case Character.UPPERCASE_LETTER, Character.LOWERCASE_LETTER, Character.TITLECASE_LETTER,
                 Character.MODIFIER_LETTER, Character.OTHER_LETTER -> LETTER;
            case Character.DECIMAL_DIGIT_NUMBER, Character.LETTER_NUMBER, Character.OTHER_NUMBER -> NUMBER;
            case Character.SPACE_SEPARATOR, Character.LINE_SEPARATOR, Character.PARAGRAPH_SEPARATOR -> SEPARATOR;
            case Character.NON_SPACING_MARK, Character.ENCLOSING_MARK, Character.COMBINING_SPACING_MARK -> MARK;
            case Character.CONNECTOR_PUNCTUATION, Character.DASH_PUNCTUATION, Character.START_PUNCTUATION,
                 Character.END_PUNCTUATION, Character.INITIAL_QUOTE_PUNCTUATION, Character.FINAL_QUOTE_PUNCTUATION,
                 Character.OTHER_PUNCTUATION -> PUNCTUATION;
            case Character.MATH_SYMBOL, Character.CURRENCY_SYMBOL, Character.MODIFIER_SYMBOL,
                 Character.OTHER_SYMBOL -> SYMBOL;
            default -> UNDEFINED;
        };
        return category | (whiteSpaceProperty(cp) ? WHITESPACE : 0);
    }

    /** The {@code White_Space} property of PropList.txt, the set llama.cpp generates {@code unicode_set_whitespace} from. */
    private static boolean whiteSpaceProperty(int cp) {
        return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680
                || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F
                || cp == 0x3000;
    }

    /** Length of the UTF-8 sequence that starts with {@code lead}, as llama.cpp's {@code unicode_len_utf8}. */
    static int utf8Length(byte lead) {
        int high = (lead & 0xFF) >>> 4;
        return high < 12 ? 1 : high < 14 ? 2 : high == 14 ? 3 : 4;
    }

    /** Code points of {@code s}; an unpaired surrogate becomes U+FFFD, as llama.cpp does for invalid UTF-8. */
    static int[] codePoints(CharSequence s, int from, int to) {
        int[] out = new int[to - from];
        int n = 0;
        for (int i = from; i < to; ) {
            char c = s.charAt(i);
            if (Character.isHighSurrogate(c) && i + 1 < to && Character.isLowSurrogate(s.charAt(i + 1))) {
                out[n++] = Character.toCodePoint(c, s.charAt(i + 1));
                i += 2;
            } else {
                out[n++] = Character.isSurrogate(c) ? 0xFFFD : c;
                i++;
            }
        }
        return n == out.length ? out : java.util.Arrays.copyOf(out, n);
    }

    /** UTF-8 bytes of {@code s[from, to)}, with an unpaired surrogate encoded as U+FFFD (not '?' as String does). */
    static byte[] utf8(String s, int from, int to) {
        byte[] out = new byte[(to - from) * 3];
        int n = 0;
        for (int cp : codePoints(s, from, to)) {
            n = putUtf8(out, n, cp);
        }
        return java.util.Arrays.copyOf(out, n);
    }

    /** Appends the UTF-8 encoding of {@code cp} to {@code buf} at {@code pos}; returns the new position. */
    static int putUtf8(byte[] buf, int pos, int cp) {
        if (cp < 0x80) {
            buf[pos++] = (byte) cp;
        } else if (cp < 0x800) {
            buf[pos++] = (byte) (0xC0 | (cp >> 6));
            buf[pos++] = (byte) (0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            buf[pos++] = (byte) (0xE0 | (cp >> 12));
            buf[pos++] = (byte) (0x80 | ((cp >> 6) & 0x3F));
            buf[pos++] = (byte) (0x80 | (cp & 0x3F));
        } else {
            buf[pos++] = (byte) (0xF0 | (cp >> 18));
            buf[pos++] = (byte) (0x80 | ((cp >> 12) & 0x3F));
            buf[pos++] = (byte) (0x80 | ((cp >> 6) & 0x3F));
            buf[pos++] = (byte) (0x80 | (cp & 0x3F));
        }
        return pos;
    }
}
