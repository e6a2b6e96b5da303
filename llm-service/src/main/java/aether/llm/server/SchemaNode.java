package aether.llm.server;

import java.util.List;

/**
 * One compiled JSON Schema (sub)schema, as {@link SchemaGrammar} walks it: a set of allowed JSON types with the
 * per-type constraints, or a list of exact texts ({@code enum}/{@code const}), or alternatives ({@code anyOf}/
 * {@code oneOf}), or a reference to another node ({@code $ref}). Built by {@link JsonSchemaCompiler}; immutable once
 * the compiler returns it (fields are written only during compilation, references may form cycles).
 */
final class SchemaNode {

    static final int OBJECT = 1;
    static final int ARRAY = 2;
    static final int STRING = 4;
    /** Integers only (no fraction or exponent is generated). */
    static final int INTEGER = 8;
    /** Any number (includes integers). */
    static final int NUMBER = 16;
    static final int BOOLEAN = 32;
    static final int NULL = 64;
    static final int ANY_TYPE = OBJECT | ARRAY | STRING | INTEGER | NUMBER | BOOLEAN | NULL;

    enum Kind { TYPED, LITERALS, ALTERNATIVES, REF }

    Kind kind = Kind.TYPED;
    /** JSON pointer of the schema in the request, for messages. */
    final String pointer;

    // REF
    SchemaNode target;

    // LITERALS: compact JSON texts, each a complete value
    List<byte[]> literals;

    // ALTERNATIVES
    List<SchemaNode> alternatives;

    // TYPED
    int types = ANY_TYPE;

    // object
    String[] names = new String[0];
    /** Each property name as a compact JSON string, quotes included. */
    byte[][] quotedNames = new byte[0][];
    SchemaNode[] properties = new SchemaNode[0];
    boolean[] required = new boolean[0];
    /** Schema of keys not in {@link #names}; null = no other keys allowed. */
    SchemaNode additional;

    // array
    SchemaNode[] prefixItems = new SchemaNode[0];
    /** Schema of items past the prefix; null = no more items. */
    SchemaNode items;
    int minItems;
    int maxItems = Integer.MAX_VALUE;

    // string (lengths in Unicode code points)
    int minLength;
    int maxLength = Integer.MAX_VALUE;

    // bounded integers: when {@link #bounded}, numbers are integers within [low, high]
    boolean bounded;
    long low = Long.MIN_VALUE;
    long high = Long.MAX_VALUE;

    /** Bytes of the shortest JSON text this schema accepts; {@link #INFINITE} when none (computed last). */
    int minLength_ = INFINITE;

    static final int INFINITE = Integer.MAX_VALUE / 4;

    SchemaNode(String pointer) {
        this.pointer = pointer;
    }

    /** Follows references to the node that constrains values. */
    SchemaNode resolve() {
        SchemaNode n = this;
        for (int hops = 0; n.kind == Kind.REF; hops++) {
            if (hops > 64) {
                throw new IllegalStateException("reference cycle at " + pointer);
            }
            n = n.target;
        }
        return n;
    }

    /** Shortest text length (resolving references). */
    int shortest() {
        return resolve().minLength_;
    }

    /** The schema of array item {@code i}, null when no such item is allowed. */
    SchemaNode item(int i) {
        return i < prefixItems.length ? prefixItems[i] : items;
    }

    /** Index of a declared property, or -1. */
    int property(String name) {
        for (int i = 0; i < names.length; i++) {
            if (names[i].equals(name)) {
                return i;
            }
        }
        return -1;
    }

    /** The schema an object's value under {@code key} must match, null when the key is not allowed. */
    SchemaNode valueOf(String key) {
        int i = property(key);
        return i >= 0 ? properties[i] : additional;
    }

    /** A node accepting any JSON value. */
    static SchemaNode any(String pointer) {
        var n = new SchemaNode(pointer);
        n.additional = n;
        n.items = n;
        return n;
    }

    @Override
    public String toString() {
        return "SchemaNode[" + kind + " " + pointer + "]";
    }
}
