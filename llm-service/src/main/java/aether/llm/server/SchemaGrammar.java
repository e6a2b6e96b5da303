package aether.llm.server;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.List;
import java.util.Set;

/**
 * A byte-level recognizer of the texts a compiled JSON Schema accepts, optionally between a fixed prefix and suffix
 * (a tool call's {@code <tool_call>…</tool_call>} wrapping): fed byte by byte, it says whether the bytes so far can
 * still become a valid document ({@link #feed}), whether they are one ({@link #complete}) and how many bytes at least
 * are needed to finish ({@link #distance}), which is what lets the sampler force the value closed before the token
 * budget runs out.
 *
 * <p>The state is a small set of immutable parse stacks (alternatives of {@code anyOf}, type lists and {@code enum}
 * texts that share a prefix run side by side), so trying a token costs nothing to undo: keep the old set. Generation
 * is deliberately narrower than validation where that keeps the automaton simple, and every text it lets through is
 * valid: whitespace runs are at most {@link #MAX_BLANKS} bytes, nesting at most {@link #MAX_DEPTH}, numbers at most
 * {@link #MAX_NUMBER_BYTES} bytes with exponents of at most {@link #MAX_EXPONENT_DIGITS} digits, keys of free-form objects have no escapes and at most {@link #MAX_KEY_BYTES} bytes,
 * {@code \}{@code u} escapes never encode surrogates, bounded numbers are integers, {@code enum} and {@code const}
 * values are written compactly. States are immutable and the grammar holds no mutable state: safe to share.
 */
public final class SchemaGrammar {

    static final int MAX_BLANKS = 4;
    static final int MAX_DEPTH = 32;
    static final int MAX_NUMBER_BYTES = 24;
    static final int MAX_KEY_BYTES = 64;
    static final int MAX_STATES = 64;
    static final int MAX_BOUNDED_DIGITS = 15;
    /** Exponents of at most two digits: every parser reads such a number as a finite double. */
    static final int MAX_EXPONENT_DIGITS = 2;

    /** One piece of the document: fixed text, or a JSON value of a schema. */
    sealed interface Part permits Text, Value {}

    record Text(byte[] bytes) implements Part {}

    record Value(SchemaNode schema) implements Part {}

    private final Part[] parts;
    private final int[] restAfter;

    /** A document that is one value of {@code schema}. */
    SchemaGrammar(SchemaNode schema) {
        this(List.of(new Value(schema)));
    }

    SchemaGrammar(List<Part> parts) {
        this.parts = parts.toArray(Part[]::new);
        this.restAfter = new int[this.parts.length + 1];
        for (int i = this.parts.length - 1; i >= 0; i--) {
            int len = this.parts[i] instanceof Text t ? t.bytes().length : ((Value) this.parts[i]).schema().shortest();
            restAfter[i] = (int) Math.min(SchemaNode.INFINITE, (long) restAfter[i + 1] + len);
        }
    }

    /** Whether {@code text} is exactly one value of {@code schema} as this grammar generates values. */
    static boolean accepts(SchemaNode schema, byte[] text) {
        var g = new SchemaGrammar(schema);
        List<State> s = feed(g.initial(), text);
        return g.complete(s);
    }

    // ---- states

    sealed interface Frame permits Doc, Expect, Lit, Str, Num, Obj, Arr {}

    /** The bottom frame: which part of the document is being read ({@code part == parts.length}: all done). */
    record Doc(SchemaGrammar grammar, int part) implements Frame {}

    /** A value of {@code node} comes next (whitespace may precede it). */
    record Expect(SchemaNode node) implements Frame {}

    /** Fixed text ({@code true}, an enum value, a prefix or suffix), {@code pos} bytes of it matched. */
    record Lit(byte[] text, int pos) implements Frame {}

    /**
     * Inside a string: {@code count} code points started so far, {@code pending} UTF-8 continuation bytes still due
     * (the next within {@code [lo, hi]}), {@code escape} 1 after a backslash, {@code hex} hex digits of a
     * {@code \}{@code u} escape still due.
     */
    record Str(SchemaNode node, int count, int pending, int lo, int hi, int escape, int hex) implements Frame {}

    /** Inside a number: see the phase constants; {@code mag}/{@code digits} track the integer part when bounded. */
    record Num(SchemaNode node, int phase, boolean negative, long mag, int digits, int length) implements Frame {}

    /**
     * Inside an object. {@code used}: declared properties already present; {@code free}: other keys present;
     * {@code candidates}/{@code keyPos}: while reading a declared key; {@code key}/{@code pending}: while reading a
     * free-form key; {@code value}: the schema of the value after the current key.
     */
    record Obj(SchemaNode node, int phase, BitSet used, List<String> free, BitSet candidates, int keyPos, byte[] key,
            int pending, int lo, int hi, SchemaNode value) implements Frame {}

    /** Inside an array; {@code count} items done (VALUE: the index of the item being read). */
    record Arr(SchemaNode node, int phase, int count) implements Frame {}

    /** A parse stack: the innermost frame on top; {@code blanks} whitespace bytes just read; containers open. */
    record State(Frame top, State below, int blanks, int depth) {}

    // object and array phases
    private static final int OPEN = 0;
    private static final int KEY = 1;
    private static final int COLON = 2;
    private static final int VALUE = 3;
    private static final int NEXT = 4;
    private static final int COMMA = 5;

    // number phases
    private static final int SIGN = 0;
    private static final int ZERO = 1;
    private static final int INT = 2;
    private static final int DOT = 3;
    private static final int FRACTION = 4;
    private static final int EXPONENT = 5;
    private static final int EXPONENT_SIGN = 6;
    private static final int EXPONENT_DIGITS = 7;

    private static final byte[] TRUE = "true".getBytes(StandardCharsets.US_ASCII);
    private static final byte[] FALSE = "false".getBytes(StandardCharsets.US_ASCII);
    private static final byte[] NULL = "null".getBytes(StandardCharsets.US_ASCII);

    /** The state before any byte. */
    List<State> initial() {
        var out = new ArrayList<State>(1);
        out.add(enter(0, null));
        return out;
    }

    /** The state reading part {@code i} (skipping empty texts), on top of {@code below}. */
    private State enter(int i, State below) {
        while (i < parts.length && parts[i] instanceof Text t && t.bytes().length == 0) {
            i++;
        }
        State doc = new State(new Doc(this, i), below, 0, below == null ? 0 : below.depth);
        if (i == parts.length) {
            return doc;
        }
        Frame f = parts[i] instanceof Text t ? new Lit(t.bytes(), 0) : new Expect(((Value) parts[i]).schema());
        return new State(f, doc, 0, doc.depth);
    }

    /** The states after {@code bytes}; empty when they cannot continue any. */
    static List<State> feed(List<State> states, byte[] bytes) {
        List<State> current = states;
        for (byte b : bytes) {
            if (current.isEmpty()) {
                return current;
            }
            current = feed(current, b & 0xff);
        }
        return current;
    }

    static List<State> feed(List<State> states, int c) {
        var out = new ArrayList<State>(Math.max(2, states.size()));
        for (State s : states) {
            step(s, c, out);
            if (out.size() >= MAX_STATES) {
                break;   // more alternatives than this add no valid texts that the kept ones lack in practice
            }
        }
        return out;
    }

    /** Whether some state is a whole document (the generation may end here). */
    boolean complete(List<State> states) {
        for (State s : states) {
            if (s.top() instanceof Doc d && d.part() == parts.length) {
                return true;
            }
            if (s.top() instanceof Num n && numberEnds(n) && s.below().top() instanceof Doc d
                    && d.part() + 1 == parts.length) {
                return true;
            }
        }
        return false;
    }

    /** Whether no byte at all can follow (only the end of generation). */
    static boolean finished(List<State> states) {
        for (State s : states) {
            if (!(s.top() instanceof Doc d && d.part() == d.grammar().parts.length)) {
                return false;
            }
        }
        return !states.isEmpty();
    }

    /** The fewest bytes that make some state a whole document; {@link SchemaNode#INFINITE} when none can. */
    static int distance(List<State> states) {
        int best = SchemaNode.INFINITE;
        for (State s : states) {
            best = Math.min(best, distance(s));
        }
        return best;
    }

    static int distance(State s) {
        long sum = 0;
        for (State x = s; x != null; x = x.below()) {
            sum += rest(x.top());
            if (sum >= SchemaNode.INFINITE) {
                return SchemaNode.INFINITE;
            }
        }
        return (int) sum;
    }

    // ---- transitions

    private static boolean blank(int c) {
        return c == ' ' || c == '\n' || c == '\t' || c == '\r';
    }

    private static State replace(State s, Frame top) {
        return new State(top, s.below(), 0, s.depth());
    }

    private static void step(State s, int c, List<State> out) {
        switch (s.top()) {
            case Doc d -> { }   // complete: nothing may follow
            case Expect e -> {
                if (blank(c)) {
                    if (s.blanks() < MAX_BLANKS) {
                        out.add(new State(e, s.below(), s.blanks() + 1, s.depth()));
                    }
                    return;
                }
                start(e.node(), c, s.below(), s.depth(), out);
            }
            case Lit l -> {
                if (l.text()[l.pos()] != (byte) c) {
                    return;
                }
                if (l.pos() + 1 == l.text().length) {
                    complete(s.below(), -1, out);
                } else {
                    out.add(replace(s, new Lit(l.text(), l.pos() + 1)));
                }
            }
            case Str str -> string(s, str, c, out);
            case Num n -> number(s, n, c, out);
            case Obj o -> object(s, o, c, out);
            case Arr a -> array(s, a, c, out);
        }
    }

    /** Starts a value of {@code node} with byte {@code c} on top of {@code below}. */
    private static void start(SchemaNode node, int c, State below, int depth, List<State> out) {
        start(node, c, below, depth, out, java.util.Collections.newSetFromMap(new java.util.IdentityHashMap<>()));
    }

    /**
     * {@code seen}: alternatives already expanded for this byte. Each node is expanded once, so alternatives that
     * refer to each other (or to themselves through a {@code $ref}) cost linear time and cannot recurse forever.
     */
    private static void start(SchemaNode node, int c, State below, int depth, List<State> out, Set<SchemaNode> seen) {
        SchemaNode n = node.resolve();
        if (!seen.add(n) || out.size() >= MAX_STATES) {
            return;
        }
        switch (n.kind) {
            case LITERALS -> {
                for (byte[] t : n.literals) {
                    if ((t[0] & 0xff) == c) {
                        if (t.length == 1) {
                            complete(below, -1, out);
                        } else {
                            out.add(new State(new Lit(t, 1), below, 0, depth));
                        }
                    }
                }
            }
            case ALTERNATIVES -> {
                for (SchemaNode a : n.alternatives) {
                    if (a.shortest() < SchemaNode.INFINITE) {
                        start(a, c, below, depth, out, seen);
                    }
                }
            }
            case REF -> throw new IllegalStateException("unresolved reference");
            case TYPED -> {
                int t = n.types;
                switch (c) {
                    case '{' -> {
                        if ((t & SchemaNode.OBJECT) != 0 && depth < MAX_DEPTH
                                && JsonSchemaCompiler.shortestObject(n) < SchemaNode.INFINITE) {
                            out.add(new State(new Obj(n, OPEN, new BitSet(), List.of(), null, 0, null, 0, 0, 0, null),
                                    below, 0, depth + 1));
                        }
                    }
                    case '[' -> {
                        if ((t & SchemaNode.ARRAY) != 0 && depth < MAX_DEPTH
                                && JsonSchemaCompiler.shortestArray(n) < SchemaNode.INFINITE) {
                            out.add(new State(new Arr(n, OPEN, 0), below, 0, depth + 1));
                        }
                    }
                    case '"' -> {
                        if ((t & SchemaNode.STRING) != 0 && n.minLength <= n.maxLength) {
                            out.add(new State(new Str(n, 0, 0, 0, 0, 0, 0), below, 0, depth));
                        }
                    }
                    case 't', 'f', 'n' -> {
                        boolean ok = c == 'n' ? (t & SchemaNode.NULL) != 0 : (t & SchemaNode.BOOLEAN) != 0;
                        if (ok) {
                            out.add(new State(new Lit(c == 't' ? TRUE : c == 'f' ? FALSE : NULL, 1), below, 0, depth));
                        }
                    }
                    default -> {
                        if ((t & (SchemaNode.INTEGER | SchemaNode.NUMBER)) == 0 || !(c == '-' || c >= '0' && c <= '9')) {
                            return;
                        }
                        Num num = c == '-' ? new Num(n, SIGN, true, 0, 0, 1)
                                : new Num(n, c == '0' ? ZERO : INT, false, c - '0', 1, 1);
                        if (!n.bounded || feasible(n, num.negative(), num.mag(), num.digits())) {
                            out.add(new State(num, below, 0, depth));
                        }
                    }
                }
            }
        }
    }

    /** The value on top of {@code below} is done: advance its container; then read {@code refeed} if >= 0. */
    private static void complete(State below, int refeed, List<State> out) {
        State next = switch (below.top()) {
            case Doc d -> d.grammar().enter(d.part() + 1, below.below());
            case Obj o -> replace(below, new Obj(o.node(), NEXT, o.used(), o.free(), null, 0, null, 0, 0, 0, null));
            case Arr a -> replace(below, new Arr(a.node(), NEXT, a.count() + 1));
            default -> throw new IllegalStateException("a value completed inside " + below.top());
        };
        if (refeed >= 0) {
            step(next, refeed, out);
        } else {
            out.add(next);
        }
    }

    /** The container on top of {@code s} closes. */
    private static void close(State s, List<State> out) {
        complete(s.below(), -1, out);
    }

    // ---- strings

    private static void string(State s, Str str, int c, List<State> out) {
        SchemaNode n = str.node();
        if (str.pending() > 0) {
            if (c >= str.lo() && c <= str.hi()) {
                out.add(replace(s, new Str(n, str.count(), str.pending() - 1, 0x80, 0xbf, 0, 0)));
            }
            return;
        }
        if (str.escape() == 1) {
            if (c == 'u') {
                out.add(replace(s, new Str(n, str.count(), 0, 0, 0, 0, 4)));
            } else if (c == '"' || c == '\\' || c == '/' || c == 'b' || c == 'f' || c == 'n' || c == 'r' || c == 't') {
                out.add(replace(s, new Str(n, str.count(), 0, 0, 0, 0, 0)));
            }
            return;
        }
        if (str.hex() > 0) {
            int v = Character.digit(c, 16);
            // no surrogates (\ud800-\udfff): a lone one is not text, and pairs would count as two code points
            if (v < 0 || str.hex() == 3 && str.lo() == 0xd && v >= 8) {
                return;
            }
            out.add(replace(s, new Str(n, str.count(), 0, str.hex() == 4 ? v : 0, 0, 0, str.hex() - 1)));
            return;
        }
        if (c == '"') {
            if (str.count() >= n.minLength) {
                complete(s.below(), -1, out);
            }
            return;
        }
        if (str.count() >= n.maxLength || c < 0x20) {
            return;
        }
        int count = str.count() + 1;
        if (c == '\\') {
            out.add(replace(s, new Str(n, count, 0, 0, 0, 1, 0)));
        } else if (c < 0x80) {
            out.add(replace(s, new Str(n, count, 0, 0, 0, 0, 0)));
        } else {
            utf8Lead(c, (pending, lo, hi) -> out.add(replace(s, new Str(n, count, pending, lo, hi, 0, 0))));
        }
    }

    private interface Lead {
        void accept(int pending, int lo, int hi);
    }

    /** A UTF-8 lead byte: how many continuation bytes follow and the range of the first (RFC 3629, no overlongs). */
    private static void utf8Lead(int c, Lead lead) {
        if (c >= 0xc2 && c <= 0xdf) {
            lead.accept(1, 0x80, 0xbf);
        } else if (c == 0xe0) {
            lead.accept(2, 0xa0, 0xbf);
        } else if (c == 0xed) {
            lead.accept(2, 0x80, 0x9f);
        } else if (c >= 0xe1 && c <= 0xef) {
            lead.accept(2, 0x80, 0xbf);
        } else if (c == 0xf0) {
            lead.accept(3, 0x90, 0xbf);
        } else if (c >= 0xf1 && c <= 0xf3) {
            lead.accept(3, 0x80, 0xbf);
        } else if (c == 0xf4) {
            lead.accept(3, 0x80, 0x8f);
        }
    }

    // ---- numbers

    private static boolean fractions(SchemaNode n) {
        return (n.types & SchemaNode.NUMBER) != 0 && !n.bounded;
    }

    /** Whether the number read so far is a whole number of its schema. */
    private static boolean numberEnds(Num num) {
        return switch (num.phase()) {
            case ZERO, INT -> !num.node().bounded || inRange(num.node(), num.negative(), num.mag());
            case FRACTION, EXPONENT_DIGITS -> true;
            default -> false;
        };
    }

    private static boolean inRange(SchemaNode n, boolean negative, long mag) {
        long v = negative ? -mag : mag;
        return v >= n.low && v <= n.high;
    }

    private static void number(State s, Num num, int c, List<State> out) {
        SchemaNode n = num.node();
        boolean digit = c >= '0' && c <= '9';
        int phase = num.phase();
        Num next = null;
        if (num.length() < MAX_NUMBER_BYTES) {
            switch (phase) {
                case SIGN -> {
                    if (digit) {
                        next = new Num(n, c == '0' ? ZERO : INT, true, c - '0', 1, num.length() + 1);
                    }
                }
                case ZERO, INT -> {
                    if (digit && phase == INT) {
                        next = new Num(n, INT, num.negative(), n.bounded ? num.mag() * 10 + (c - '0') : 0,
                                num.digits() + 1, num.length() + 1);
                    } else if (c == '.' && fractions(n)) {
                        next = new Num(n, DOT, num.negative(), 0, 0, num.length() + 1);
                    } else if ((c == 'e' || c == 'E') && fractions(n)) {
                        next = new Num(n, EXPONENT, num.negative(), 0, 0, num.length() + 1);
                    }
                }
                case DOT -> next = digit ? new Num(n, FRACTION, num.negative(), 0, 0, num.length() + 1) : null;
                case FRACTION -> {
                    if (digit) {
                        next = new Num(n, FRACTION, num.negative(), 0, 0, num.length() + 1);
                    } else if (c == 'e' || c == 'E') {
                        next = new Num(n, EXPONENT, num.negative(), 0, 0, num.length() + 1);
                    }
                }
                case EXPONENT -> {
                    if (c == '+' || c == '-') {
                        next = new Num(n, EXPONENT_SIGN, num.negative(), 0, 0, num.length() + 1);
                    } else if (digit) {
                        next = new Num(n, EXPONENT_DIGITS, num.negative(), 0, 1, num.length() + 1);
                    }
                }
                case EXPONENT_SIGN -> next = digit ? new Num(n, EXPONENT_DIGITS, num.negative(), 0, 1,
                        num.length() + 1) : null;
                default -> next = digit && num.digits() < MAX_EXPONENT_DIGITS
                        ? new Num(n, EXPONENT_DIGITS, num.negative(), 0, num.digits() + 1, num.length() + 1) : null;
            }
        }
        if (next != null && n.bounded && (next.phase() == ZERO || next.phase() == INT)
                && (next.digits() > MAX_BOUNDED_DIGITS || !feasible(n, next.negative(), next.mag(), next.digits()))) {
            next = null;
        }
        if (next != null && !n.bounded && next.length() + numberRest(next) > MAX_NUMBER_BYTES) {
            next = null;   // the cap must leave room for what the number still needs (a digit after '.', 'e', '-')
        }
        if (next != null) {
            out.add(replace(s, next));
            return;
        }
        // c does not continue the number: it ends here if it may, and c belongs to what follows
        if (numberEnds(num) && !(s.below().top() instanceof Doc)) {
            complete(s.below(), c, out);
        } else if (numberEnds(num) && s.below().top() instanceof Doc d && d.part() + 1 < d.grammar().parts.length) {
            complete(s.below(), c, out);
        }
    }

    /** Whether some integer with this sign and these leading digits lies in the node's range. */
    private static boolean feasible(SchemaNode n, boolean negative, long mag, int digits) {
        return extraDigits(n, negative, mag, digits) >= 0;
    }

    /** The fewest digits to append so the integer lies in range; -1 when none can. */
    private static int extraDigits(SchemaNode n, boolean negative, long mag, int digits) {
        if (digits > 0 && mag == 0) {
            return inRange(n, negative, 0) ? 0 : -1;   // a leading 0 takes no more digits
        }
        long scale = 1;
        for (int k = 0; digits + k <= MAX_BOUNDED_DIGITS; k++) {
            long lowMag;
            long highMag;
            if (digits == 0) {
                if (k == 0) {
                    scale = 1;
                    continue;
                }
                lowMag = scale;          // k digits, the first non-zero
                highMag = scale * 10 - 1;
                scale *= 10;
            } else {
                lowMag = mag * scale;
                highMag = mag * scale + scale - 1;
                scale *= 10;
            }
            long a = negative ? -highMag : lowMag;
            long b = negative ? -lowMag : highMag;
            if (a <= n.high && b >= n.low) {
                return k;
            }
            if (!negative && lowMag > n.high || negative && -lowMag < n.low) {
                return -1;   // longer only moves further out
            }
        }
        return -1;
    }

    // ---- objects

    private static int missing(Obj o) {
        int m = 0;
        SchemaNode n = o.node();
        for (int i = 0; i < n.names.length; i++) {
            if (n.required[i] && !o.used().get(i)) {
                m++;
            }
        }
        return m;
    }

    private static boolean usable(SchemaNode schema) {
        return schema != null && schema.shortest() < SchemaNode.INFINITE;
    }

    /** Whether another key may still be written. */
    private static boolean keyAvailable(Obj o) {
        SchemaNode n = o.node();
        if (usable(n.additional)) {
            return true;
        }
        for (int i = 0; i < n.names.length; i++) {
            if (!o.used().get(i) && usable(n.properties[i])) {
                return true;
            }
        }
        return false;
    }

    private static Obj withPhase(Obj o, int phase) {
        return new Obj(o.node(), phase, o.used(), o.free(), null, 0, null, 0, 0, 0, null);
    }

    private static void object(State s, Obj o, int c, List<State> out) {
        SchemaNode n = o.node();
        switch (o.phase()) {
            case OPEN, NEXT, COMMA, COLON -> {
                if (blank(c)) {
                    if (s.blanks() < MAX_BLANKS) {
                        out.add(new State(o, s.below(), s.blanks() + 1, s.depth()));
                    }
                    return;
                }
                if (o.phase() == COLON) {
                    if (c == ':') {
                        Obj v = new Obj(n, VALUE, o.used(), o.free(), null, 0, null, 0, 0, 0, o.value());
                        out.add(new State(new Expect(o.value()), replace(s, v), 0, s.depth()));
                    }
                    return;
                }
                if (c == '}' && o.phase() != COMMA) {
                    if (missing(o) == 0) {
                        close(s, out);
                    }
                    return;
                }
                if (c == ',' && o.phase() == NEXT) {
                    if (keyAvailable(o)) {
                        out.add(replace(s, withPhase(o, COMMA)));
                    }
                    return;
                }
                if (c == '"' && o.phase() != NEXT) {
                    if (usable(n.additional)) {
                        out.add(replace(s, new Obj(n, KEY, o.used(), o.free(), null, 0, new byte[0], 0, 0, 0, null)));
                    } else {
                        var candidates = new BitSet();
                        for (int i = 0; i < n.names.length; i++) {
                            if (!o.used().get(i) && usable(n.properties[i])) {
                                candidates.set(i);
                            }
                        }
                        if (!candidates.isEmpty()) {
                            out.add(replace(s, new Obj(n, KEY, o.used(), o.free(), candidates, 1, null, 0, 0, 0,
                                    null)));
                        }
                    }
                }
            }
            case KEY -> {
                if (o.candidates() != null) {
                    declaredKey(s, o, c, out);
                } else {
                    freeKey(s, o, c, out);
                }
            }
            default -> { }   // VALUE: the value's frame is on top
        }
    }

    private static void declaredKey(State s, Obj o, int c, List<State> out) {
        SchemaNode n = o.node();
        var next = new BitSet();
        int closed = -1;
        for (int i = o.candidates().nextSetBit(0); i >= 0; i = o.candidates().nextSetBit(i + 1)) {
            byte[] q = n.quotedNames[i];
            if ((q[o.keyPos()] & 0xff) == c) {
                if (o.keyPos() + 1 == q.length) {
                    closed = i;
                } else {
                    next.set(i);
                }
            }
        }
        if (closed >= 0) {
            BitSet used = (BitSet) o.used().clone();
            used.set(closed);
            out.add(replace(s, new Obj(n, COLON, used, o.free(), null, 0, null, 0, 0, 0, n.properties[closed])));
        } else if (!next.isEmpty()) {
            out.add(replace(s, new Obj(n, KEY, o.used(), o.free(), next, o.keyPos() + 1, null, 0, 0, 0, null)));
        }
    }

    private static void freeKey(State s, Obj o, int c, List<State> out) {
        SchemaNode n = o.node();
        byte[] key = o.key();
        if (o.pending() > 0) {
            if (c >= o.lo() && c <= o.hi()) {
                out.add(replace(s, new Obj(n, KEY, o.used(), o.free(), null, 0, append(key, c), o.pending() - 1,
                        0x80, 0xbf, null)));
            }
            return;
        }
        if (c == '"') {
            String text = new String(key, StandardCharsets.UTF_8);
            int declared = n.property(text);
            if (declared >= 0 ? o.used().get(declared) : o.free().contains(text)) {
                return;   // a duplicate key
            }
            SchemaNode value = n.valueOf(text);
            if (!usable(value)) {
                return;
            }
            BitSet used = o.used();
            List<String> free = o.free();
            if (declared >= 0) {
                used = (BitSet) used.clone();
                used.set(declared);
            } else {
                var f = new ArrayList<String>(free.size() + 1);
                f.addAll(free);
                f.add(text);
                free = List.copyOf(f);
            }
            out.add(replace(s, new Obj(n, COLON, used, free, null, 0, null, 0, 0, 0, value)));
            return;
        }
        if (c < 0x20 || c == '\\' || key.length >= MAX_KEY_BYTES) {
            return;
        }
        if (c < 0x80) {
            out.add(replace(s, new Obj(n, KEY, o.used(), o.free(), null, 0, append(key, c), 0, 0, 0, null)));
        } else {
            utf8Lead(c, (pending, lo, hi) -> out.add(replace(s, new Obj(n, KEY, o.used(), o.free(), null, 0,
                    append(key, c), pending, lo, hi, null))));
        }
    }

    private static byte[] append(byte[] a, int c) {
        byte[] b = java.util.Arrays.copyOf(a, a.length + 1);
        b[a.length] = (byte) c;
        return b;
    }

    // ---- arrays

    private static boolean itemAllowed(SchemaNode n, int index) {
        return index < n.maxItems && usable(n.item(index));
    }

    private static void array(State s, Arr a, int c, List<State> out) {
        SchemaNode n = a.node();
        if (a.phase() == VALUE) {
            return;
        }
        if (blank(c)) {
            if (s.blanks() < MAX_BLANKS) {
                out.add(new State(a, s.below(), s.blanks() + 1, s.depth()));
            }
            return;
        }
        if (c == ']') {
            if (a.count() >= n.minItems) {
                close(s, out);
            }
            return;
        }
        if (a.phase() == NEXT) {
            if (c == ',' && itemAllowed(n, a.count())) {
                out.add(new State(new Expect(n.item(a.count())), replace(s, new Arr(n, VALUE, a.count())), 0,
                        s.depth()));
            }
            return;
        }
        // OPEN: the first item starts with c
        if (itemAllowed(n, 0)) {
            start(n.item(0), c, replace(s, new Arr(n, VALUE, 0)), s.depth(), out);
        }
    }

    // ---- distance

    /** The fewest bytes that finish this frame, once the frame above it (if any) is finished. */
    private static int rest(Frame f) {
        return switch (f) {
            case Doc d -> d.grammar().restAfter[Math.min(d.part() + 1, d.grammar().parts.length)];
            case Expect e -> e.node().shortest();
            case Lit l -> l.text().length - l.pos();
            case Str s -> s.pending() + s.hex() + s.escape() + Math.max(0, s.node().minLength - s.count()) + 1;
            case Num n -> numberRest(n);
            case Obj o -> objectRest(o);
            case Arr a -> arrayRest(a);
        };
    }

    private static int numberRest(Num n) {
        if (n.node().bounded) {
            if (n.phase() == SIGN && n.digits() == 0) {
                int k = extraDigits(n.node(), true, 0, 0);
                return k < 0 ? SchemaNode.INFINITE : k;
            }
            int k = extraDigits(n.node(), n.negative(), n.mag(), n.digits());
            return k < 0 ? SchemaNode.INFINITE : k;
        }
        return switch (n.phase()) {
            case ZERO, INT, FRACTION, EXPONENT_DIGITS -> 0;
            default -> 1;
        };
    }

    /** Bytes of {@code ,"name":shortest} for each missing required property, the first without its comma. */
    private static long missingCost(SchemaNode n, BitSet used, int except) {
        long sum = 0;
        for (int i = 0; i < n.names.length; i++) {
            if (n.required[i] && !used.get(i) && i != except) {
                sum += 1 + n.quotedNames[i].length + 1 + n.properties[i].shortest();
            }
        }
        return sum;
    }

    private static int objectRest(Obj o) {
        SchemaNode n = o.node();
        long r = switch (o.phase()) {
            case OPEN -> {
                long m = missingCost(n, o.used(), -1);
                yield m == 0 ? 1 : m - 1 + 1;
            }
            case NEXT, VALUE -> missingCost(n, o.used(), -1) + 1;
            case COMMA -> {
                long m = missingCost(n, o.used(), -1);
                yield m > 0 ? m - 1 + 1 : cheapestPair(o) + 1;
            }
            case COLON -> 1 + o.value().shortest() + missingCost(n, o.used(), -1) + 1;
            case KEY -> keyRest(o);
            default -> SchemaNode.INFINITE;
        };
        return (int) Math.min(r, SchemaNode.INFINITE);
    }

    /** The shortest {@code "key":value} still allowed. */
    private static long cheapestPair(Obj o) {
        SchemaNode n = o.node();
        long best = SchemaNode.INFINITE;
        for (int i = 0; i < n.names.length; i++) {
            if (!o.used().get(i) && usable(n.properties[i])) {
                best = Math.min(best, n.quotedNames[i].length + 1 + n.properties[i].shortest());
            }
        }
        if (usable(n.additional)) {
            best = Math.min(best, 3 + 1 + n.additional.shortest());   // "k":value (the empty key may be taken)
        }
        return best;
    }

    private static long keyRest(Obj o) {
        SchemaNode n = o.node();
        long best = SchemaNode.INFINITE;
        if (o.candidates() != null) {
            for (int i = o.candidates().nextSetBit(0); i >= 0; i = o.candidates().nextSetBit(i + 1)) {
                long v = (n.quotedNames[i].length - o.keyPos()) + 1 + n.properties[i].shortest()
                        + missingCost(n, o.used(), i) + 1;
                best = Math.min(best, v);
            }
            return best;
        }
        String text = new String(o.key(), StandardCharsets.UTF_8);
        int declared = n.property(text);
        boolean duplicate = declared >= 0 ? o.used().get(declared) : o.free().contains(text);
        SchemaNode value = n.valueOf(text);
        long closeNow = o.pending() + 1 + 1 + (usable(value) ? value.shortest() : SchemaNode.INFINITE)
                + missingCost(n, o.used(), declared) + 1;
        if (duplicate || o.pending() == 0 && !usable(value)) {
            closeNow = o.pending() + 1 + 1 + 1 + (usable(n.additional) ? n.additional.shortest() : SchemaNode.INFINITE)
                    + missingCost(n, o.used(), -1) + 1;
        }
        // or go on typing an unused declared name this key starts (its quoted form is '"' + raw bytes + '"' when
        // the name needs no escape)
        long typed = closeNow;
        byte[] key = o.key();
        for (int i = 0; i < n.names.length; i++) {
            byte[] q = n.quotedNames[i];
            if (o.used().get(i) || q.length - 2 <= key.length || !usable(n.properties[i])) {
                continue;
            }
            if (java.util.Arrays.equals(q, 1, 1 + key.length, key, 0, key.length)) {
                typed = Math.min(typed, (q.length - 1 - key.length) + 1 + n.properties[i].shortest()
                        + missingCost(n, o.used(), i) + 1);
            }
        }
        return typed;
    }

    private static int arrayRest(Arr a) {
        SchemaNode n = a.node();
        int from = a.phase() == VALUE ? a.count() + 1 : a.count();
        if (from >= n.minItems) {
            return 1;
        }
        // every item but the first after '[' needs a comma; items past the prefix all cost the same
        long sum = 1 + itemsCost(n, from, n.minItems) - (from == 0 && a.phase() == OPEN ? 1 : 0);
        return (int) Math.min(sum, SchemaNode.INFINITE);
    }

    /** Bytes of {@code ,item} for items {@code [from, to)} at their shortest. */
    static long itemsCost(SchemaNode n, int from, int to) {
        long sum = 0;
        int prefixEnd = Math.min(to, n.prefixItems.length);
        for (int i = from; i < prefixEnd; i++) {
            sum += 1 + n.prefixItems[i].shortest();
        }
        int tail = to - Math.max(from, n.prefixItems.length);
        if (tail > 0) {
            if (n.items == null) {
                return SchemaNode.INFINITE;
            }
            sum += (long) tail * (1 + n.items.shortest());
        }
        return Math.min(sum, SchemaNode.INFINITE);
    }
}
