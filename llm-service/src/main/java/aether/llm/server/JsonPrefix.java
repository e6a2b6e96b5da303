package aether.llm.server;

/**
 * A byte-level recognizer of JSON text prefixes (RFC 8259), fed incrementally: {@link #feed} says whether the bytes
 * so far can still be the start of one JSON object, {@link #complete()} whether they are one. Used to constrain
 * generation to {@code response_format: json_object}. Whitespace runs are capped (a model must not stall the output
 * with endless blanks) and nesting is limited to {@link #MAX_DEPTH}. Bytes from 0x80 up are accepted inside strings
 * only (UTF-8 is not validated further). Not thread-safe; {@link #copyFrom} makes cheap trial copies.
 */
final class JsonPrefix {

    static final int MAX_DEPTH = 32;
    static final int MAX_WHITESPACE_RUN = 4;

    private static final int TOP = 0;
    private static final int VALUE = 1;
    private static final int KEY_OR_END = 2;
    private static final int KEY = 3;
    private static final int COLON = 4;
    private static final int OBJECT_NEXT = 5;
    private static final int VALUE_OR_END = 6;
    private static final int ARRAY_NEXT = 7;
    private static final int STRING = 8;
    private static final int ESCAPE = 9;
    private static final int UNICODE = 10;
    private static final int MINUS = 11;
    private static final int ZERO = 12;
    private static final int INT = 13;
    private static final int DOT = 14;
    private static final int FRACTION = 15;
    private static final int EXPONENT = 16;
    private static final int EXPONENT_SIGN = 17;
    private static final int EXPONENT_DIGITS = 18;
    private static final int LITERAL = 19;
    private static final int DONE = 20;
    private static final int FAILED = 21;

    private static final byte[][] LITERALS = {"true".getBytes(), "false".getBytes(), "null".getBytes()};

    private final byte[] stack = new byte[MAX_DEPTH];
    private int depth;
    private int mode = TOP;
    private boolean inKey;
    private int hexLeft;
    private int literal;
    private int literalAt;
    private int whitespace;

    void copyFrom(JsonPrefix o) {
        System.arraycopy(o.stack, 0, stack, 0, o.depth);
        depth = o.depth;
        mode = o.mode;
        inKey = o.inKey;
        hexLeft = o.hexLeft;
        literal = o.literal;
        literalAt = o.literalAt;
        whitespace = o.whitespace;
    }

    /** Feeds bytes; returns false (and stays failed) when they cannot continue a JSON object. */
    boolean feed(byte[] bytes) {
        for (byte b : bytes) {
            if (!feed(b & 0xff)) {
                mode = FAILED;
                return false;
            }
        }
        return true;
    }

    boolean complete() {
        return mode == DONE;
    }

    /**
     * The fewest bytes that complete the object from here (0 when complete, {@link Integer#MAX_VALUE} when failed):
     * close the open string or literal, give a pending key a {@code :0}, a pending value a {@code 0}, then one closer
     * per open container.
     */
    int distance() {
        int here = switch (mode) {
            case TOP -> 2;
            case VALUE, MINUS, DOT, EXPONENT, EXPONENT_SIGN -> 1;
            case KEY -> 4;   // "":0
            case COLON -> 2;   // :0
            case STRING -> inKey ? 3 : 1;
            case ESCAPE -> inKey ? 4 : 2;
            case UNICODE -> hexLeft + (inKey ? 3 : 1);
            case LITERAL -> LITERALS[literal].length - literalAt;
            case DONE -> 0;
            case FAILED -> Integer.MAX_VALUE - depth;
            default -> 0;   // KEY_OR_END, VALUE_OR_END, OBJECT_NEXT, ARRAY_NEXT and complete numbers
        };
        return here + depth;
    }

    private boolean feed(int c) {
        if (mode >= MINUS && mode <= EXPONENT_DIGITS) {
            int before = mode;
            if (number(c)) {
                return true;
            }
            if (before != ZERO && before != INT && before != FRACTION && before != EXPONENT_DIGITS) {
                return false;
            }
            valueDone();   // the number ended: c belongs to what follows it
        }
        boolean blank = c == ' ' || c == '\t' || c == '\n' || c == '\r';
        if (blank && mode <= ARRAY_NEXT) {
            return ++whitespace <= MAX_WHITESPACE_RUN;
        }
        whitespace = 0;
        switch (mode) {
            case TOP:
                return c == '{' && push('O', KEY_OR_END);
            case VALUE:
            case VALUE_OR_END:
                if (c == ']' && mode == VALUE_OR_END) {
                    return pop();
                }
                return value(c);
            case KEY_OR_END:
                if (c == '}') {
                    return pop();
                }
                return key(c);
            case KEY:
                return key(c);
            case COLON:
                if (c != ':') {
                    return false;
                }
                mode = VALUE;
                return true;
            case OBJECT_NEXT:
                if (c == ',') {
                    mode = KEY;
                    return true;
                }
                return c == '}' && pop();
            case ARRAY_NEXT:
                if (c == ',') {
                    mode = VALUE;
                    return true;
                }
                return c == ']' && pop();
            case STRING:
                if (c == '"') {
                    if (inKey) {
                        mode = COLON;
                    } else {
                        valueDone();
                    }
                    return true;
                }
                if (c == '\\') {
                    mode = ESCAPE;
                    return true;
                }
                return c >= 0x20;
            case ESCAPE:
                if (c == 'u') {
                    mode = UNICODE;
                    hexLeft = 4;
                    return true;
                }
                mode = STRING;
                return c == '"' || c == '\\' || c == '/' || c == 'b' || c == 'f' || c == 'n' || c == 'r' || c == 't';
            case UNICODE:
                if (Character.digit(c, 16) < 0) {
                    return false;
                }
                if (--hexLeft == 0) {
                    mode = STRING;
                }
                return true;
            case LITERAL:
                if (c != LITERALS[literal][literalAt]) {
                    return false;
                }
                if (++literalAt == LITERALS[literal].length) {
                    valueDone();
                }
                return true;
            default:   // DONE accepts nothing more (the model must end), FAILED stays failed
                return false;
        }
    }

    private boolean value(int c) {
        switch (c) {
            case '{':
                return push('O', KEY_OR_END);
            case '[':
                return push('A', VALUE_OR_END);
            case '"':
                mode = STRING;
                inKey = false;
                return true;
            case '-':
                mode = MINUS;
                return true;
            case '0':
                mode = ZERO;
                return true;
            case 't', 'f', 'n':
                literal = c == 't' ? 0 : c == 'f' ? 1 : 2;
                literalAt = 1;
                mode = LITERAL;
                return true;
            default:
                if (c >= '1' && c <= '9') {
                    mode = INT;
                    return true;
                }
                return false;
        }
    }

    private boolean key(int c) {
        if (c != '"') {
            return false;
        }
        mode = STRING;
        inKey = true;
        return true;
    }

    /** Advances a number; false when {@code c} does not continue it. */
    private boolean number(int c) {
        boolean digit = c >= '0' && c <= '9';
        switch (mode) {
            case MINUS:
                if (c == '0') {
                    mode = ZERO;
                    return true;
                }
                if (digit) {
                    mode = INT;
                    return true;
                }
                return false;
            case ZERO:
            case INT:
                if (digit && mode == INT) {
                    return true;
                }
                if (c == '.') {
                    mode = DOT;
                    return true;
                }
                if (c == 'e' || c == 'E') {
                    mode = EXPONENT;
                    return true;
                }
                return false;
            case DOT:
                if (digit) {
                    mode = FRACTION;
                }
                return digit;
            case FRACTION:
                if (digit) {
                    return true;
                }
                if (c == 'e' || c == 'E') {
                    mode = EXPONENT;
                    return true;
                }
                return false;
            case EXPONENT:
                if (c == '+' || c == '-') {
                    mode = EXPONENT_SIGN;
                    return true;
                }
                if (digit) {
                    mode = EXPONENT_DIGITS;
                }
                return digit;
            case EXPONENT_SIGN:
                if (digit) {
                    mode = EXPONENT_DIGITS;
                }
                return digit;
            default:   // EXPONENT_DIGITS
                return digit;
        }
    }

    private boolean push(byte container, int next) {
        if (depth == MAX_DEPTH) {
            return false;
        }
        stack[depth++] = container;
        mode = next;
        return true;
    }

    private boolean push(char container, int next) {
        return push((byte) container, next);
    }

    private boolean pop() {
        depth--;
        valueDone();
        return true;
    }

    private void valueDone() {
        if (depth == 0) {
            mode = DONE;
        } else {
            mode = stack[depth - 1] == 'O' ? OBJECT_NEXT : ARRAY_NEXT;
        }
    }
}
