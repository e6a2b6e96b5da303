package aether.llm.server;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.math.BigDecimal;
import java.math.RoundingMode;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Compiles a JSON Schema (draft 2020-12 keywords, with the draft-7 forms of {@code items}/{@code definitions}) into
 * {@link SchemaNode}s for constrained decoding. Supported: {@code type} (one or a list), {@code properties},
 * {@code required}, {@code additionalProperties} (false, true or a schema), {@code enum}, {@code const},
 * {@code items}, {@code prefixItems}, {@code additionalItems}, {@code minItems}, {@code maxItems},
 * {@code minLength}, {@code maxLength}, {@code minimum}/{@code maximum}/{@code exclusiveMinimum}/
 * {@code exclusiveMaximum} (bounded numbers are generated as integers in range), {@code anyOf}, {@code oneOf}
 * (alternatives that provably cannot both match), {@code allOf} of one schema, {@code $ref} into the same document
 * ({@code #}, {@code #/$defs/…}, {@code #/definitions/…}, any JSON pointer), OpenAPI's {@code nullable}. Annotations
 * ({@code title}, {@code description}, {@code default}, {@code examples}, {@code format}, …) are ignored, as a
 * 2020-12 validator does by default. Any other keyword is refused with a {@link SchemaException} naming it and its
 * JSON pointer: a constraint that is silently dropped would let invalid output through.
 */
final class JsonSchemaCompiler {

    /** A schema this server cannot enforce, or one no value can satisfy. */
    static final class SchemaException extends RuntimeException {
        final String pointer;

        SchemaException(String pointer, String message) {
            super(message);
            this.pointer = pointer;
        }
    }

    private static final Set<String> ANNOTATIONS = Set.of("title", "description", "default", "examples", "$schema",
            "$id", "$comment", "$anchor", "format", "deprecated", "readOnly", "writeOnly", "contentEncoding",
            "contentMediaType", "$defs", "definitions", "example");
    private static final Set<String> SUPPORTED = Set.of("type", "properties", "required", "additionalProperties",
            "enum", "const", "items", "prefixItems", "additionalItems", "minItems", "maxItems", "minLength",
            "maxLength", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "anyOf", "oneOf", "allOf",
            "$ref", "nullable");
    /** Each token check walks an object's properties: more than this would slow every decode step. */
    static final int MAX_PROPERTIES = 1024;
    /** Bounded integers stay within 15 digits, where doubles are exact. */
    static final long BOUND_LIMIT = 999_999_999_999_999L;
    private static final ObjectMapper MAPPER = new ObjectMapper();

    private final JsonNode root;
    private final Map<String, SchemaNode> byPointer = new HashMap<>();
    private final List<SchemaNode> all = new ArrayList<>();
    /** Literal nodes and the typed node their texts must also satisfy. */
    private final Map<SchemaNode, SchemaNode> literalRest = new LinkedHashMap<>();

    private JsonSchemaCompiler(JsonNode root) {
        this.root = root;
    }

    /**
     * Compiles {@code schema}.
     *
     * @throws SchemaException for an unsupported keyword, a bad keyword value, an unresolvable {@code $ref} or a
     *                         schema that accepts no value
     */
    static SchemaNode compile(JsonNode schema) {
        var c = new JsonSchemaCompiler(schema);
        SchemaNode top = c.at("#");
        c.finish(top);
        return top;
    }

    private SchemaNode at(String pointer) {
        SchemaNode known = byPointer.get(pointer);
        if (known != null) {
            return known;
        }
        JsonNode node;
        try {
            node = pointer.equals("#") ? root : root.at(unescapePointer(pointer.substring(1)));
        } catch (IllegalArgumentException e) {
            throw new SchemaException(pointer, "'" + pointer + "' is not a JSON pointer (" + e.getMessage() + ")");
        }
        if (node == null || node.isMissingNode()) {
            throw new SchemaException(pointer, "$ref target '" + pointer + "' does not exist in the schema");
        }
        var n = new SchemaNode(pointer);
        byPointer.put(pointer, n);
        all.add(n);
        fill(n, node, pointer);
        return n;
    }

    private static String unescapePointer(String p) {
        // JsonNode.at takes the pointer with ~0/~1 escapes as they are; URI percent-escapes are decoded first
        return java.net.URLDecoder.decode(p.replace("+", "%2B"), java.nio.charset.StandardCharsets.UTF_8);
    }

    private static String child(String pointer, String... parts) {
        var sb = new StringBuilder(pointer);
        for (String p : parts) {
            sb.append('/').append(p.replace("~", "~0").replace("/", "~1"));
        }
        return sb.toString();
    }

    private void fill(SchemaNode n, JsonNode s, String ptr) {
        if (s.isBoolean()) {
            if (!s.booleanValue()) {
                n.types = 0;   // false: nothing matches
            } else {
                n.additional = anyNode(ptr);
                n.items = n.additional;
            }
            return;
        }
        if (!s.isObject()) {
            throw new SchemaException(ptr, "a schema must be an object or a boolean, found " + s.getNodeType()
                    .name().toLowerCase());
        }
        boolean assertions = false;
        for (Iterator<String> it = s.fieldNames(); it.hasNext(); ) {
            String k = it.next();
            if (!SUPPORTED.contains(k) && !ANNOTATIONS.contains(k)) {
                throw new SchemaException(child(ptr, k), "unsupported JSON Schema keyword '" + k + "'");
            }
            if (SUPPORTED.contains(k) && !k.equals("$ref") && !k.equals("anyOf") && !k.equals("oneOf")
                    && !k.equals("allOf")) {
                assertions = true;
            }
        }
        int combinators = (s.has("$ref") ? 1 : 0) + (s.has("anyOf") ? 1 : 0) + (s.has("oneOf") ? 1 : 0)
                + (s.has("allOf") ? 1 : 0);
        if (combinators > 0) {
            String which = s.has("$ref") ? "$ref" : s.has("anyOf") ? "anyOf" : s.has("oneOf") ? "oneOf" : "allOf";
            if (combinators > 1 || assertions) {
                String other = otherAssertion(s, which);
                throw new SchemaException(child(ptr, which), "'" + which + "' together with '" + other
                        + "' in one schema is not supported; move '" + other + "' into the alternatives");
            }
            switch (which) {
                case "$ref" -> {
                    JsonNode ref = s.get("$ref");
                    if (!ref.isTextual() || !ref.textValue().startsWith("#")) {
                        throw new SchemaException(child(ptr, "$ref"), "only references into the same schema ('#', "
                                + "'#/$defs/…', '#/definitions/…') are supported, found " + ref);
                    }
                    n.kind = SchemaNode.Kind.REF;
                    n.target = at(ref.textValue());
                }
                case "allOf" -> {
                    JsonNode list = s.get("allOf");
                    if (!list.isArray() || list.size() != 1) {
                        throw new SchemaException(child(ptr, "allOf"), "'allOf' is supported with exactly one "
                                + "schema only");
                    }
                    n.kind = SchemaNode.Kind.REF;
                    n.target = at(child(ptr, "allOf", "0"));
                }
                default -> {
                    JsonNode list = s.get(which);
                    if (!list.isArray() || list.isEmpty()) {
                        throw new SchemaException(child(ptr, which), "'" + which
                                + "' must be a non-empty array of schemas");
                    }
                    n.kind = SchemaNode.Kind.ALTERNATIVES;
                    n.alternatives = new ArrayList<>();
                    for (int i = 0; i < list.size(); i++) {
                        n.alternatives.add(at(child(ptr, which, Integer.toString(i))));
                    }
                    if (which.equals("oneOf")) {
                        oneOfs.add(n);
                    }
                }
            }
            return;
        }
        types(n, s, ptr);
        objectKeywords(n, s, ptr);
        arrayKeywords(n, s, ptr);
        stringKeywords(n, s, ptr);
        numberKeywords(n, s, ptr);
        if (s.has("enum") || s.has("const")) {
            literals(n, s, ptr);
        }
    }

    private final List<SchemaNode> oneOfs = new ArrayList<>();

    private static String otherAssertion(JsonNode s, String which) {
        for (Iterator<String> it = s.fieldNames(); it.hasNext(); ) {
            String k = it.next();
            if (!k.equals(which) && SUPPORTED.contains(k)) {
                return k;
            }
        }
        return which;
    }

    private void types(SchemaNode n, JsonNode s, String ptr) {
        JsonNode t = s.get("type");
        if (t != null) {
            int mask = 0;
            if (t.isTextual()) {
                mask = type(t.textValue(), child(ptr, "type"));
            } else if (t.isArray() && !t.isEmpty()) {
                for (int i = 0; i < t.size(); i++) {
                    JsonNode e = t.get(i);
                    if (!e.isTextual()) {
                        throw new SchemaException(child(ptr, "type", Integer.toString(i)), "a type name must be a "
                                + "string");
                    }
                    mask |= type(e.textValue(), child(ptr, "type", Integer.toString(i)));
                }
            } else {
                throw new SchemaException(child(ptr, "type"), "'type' must be a type name or a non-empty array of "
                        + "them");
            }
            n.types = mask;
        }
        if (s.has("nullable")) {
            if (!s.get("nullable").isBoolean()) {
                throw new SchemaException(child(ptr, "nullable"), "'nullable' must be a boolean");
            }
            if (s.get("nullable").booleanValue()) {
                n.types |= SchemaNode.NULL;
            }
        }
    }

    private static int type(String name, String ptr) {
        return switch (name) {
            case "object" -> SchemaNode.OBJECT;
            case "array" -> SchemaNode.ARRAY;
            case "string" -> SchemaNode.STRING;
            case "integer" -> SchemaNode.INTEGER;
            case "number" -> SchemaNode.NUMBER | SchemaNode.INTEGER;
            case "boolean" -> SchemaNode.BOOLEAN;
            case "null" -> SchemaNode.NULL;
            default -> throw new SchemaException(ptr, "unknown type '" + name + "' (expected object, array, string, "
                    + "number, integer, boolean or null)");
        };
    }

    private void objectKeywords(SchemaNode n, JsonNode s, String ptr) {
        var names = new ArrayList<String>();
        var props = new ArrayList<SchemaNode>();
        JsonNode p = s.get("properties");
        if (p != null) {
            if (!p.isObject()) {
                throw new SchemaException(child(ptr, "properties"), "'properties' must be an object of schemas");
            }
            for (Iterator<String> it = p.fieldNames(); it.hasNext(); ) {
                String name = it.next();
                names.add(name);
                props.add(at(child(ptr, "properties", name)));
            }
        }
        JsonNode ap = s.get("additionalProperties");
        if (ap == null) {
            n.additional = anyNode(child(ptr, "additionalProperties"));
        } else if (ap.isBoolean() && !ap.booleanValue()) {
            n.additional = null;
        } else {
            n.additional = at(child(ptr, "additionalProperties"));
        }
        var required = new java.util.LinkedHashSet<String>();
        JsonNode r = s.get("required");
        if (r != null) {
            if (!r.isArray()) {
                throw new SchemaException(child(ptr, "required"), "'required' must be an array of property names");
            }
            for (int i = 0; i < r.size(); i++) {
                if (!r.get(i).isTextual()) {
                    throw new SchemaException(child(ptr, "required", Integer.toString(i)), "a required property "
                            + "name must be a string");
                }
                String name = r.get(i).textValue();
                required.add(name);
                if (!names.contains(name)) {
                    if (n.additional == null) {
                        n.types &= ~SchemaNode.OBJECT;   // required but forbidden: no object can match
                    } else {
                        names.add(name);
                        props.add(n.additional);
                    }
                }
            }
        }
        if (names.size() > MAX_PROPERTIES) {
            throw new SchemaException(child(ptr, "properties"), "an object schema with " + names.size()
                    + " properties; this server supports at most " + MAX_PROPERTIES);
        }
        n.names = names.toArray(String[]::new);
        n.properties = props.toArray(SchemaNode[]::new);
        n.quotedNames = new byte[n.names.length][];
        n.required = new boolean[n.names.length];
        for (int i = 0; i < n.names.length; i++) {
            n.quotedNames[i] = compact(MAPPER.getNodeFactory().textNode(n.names[i]));
            n.required[i] = required.contains(n.names[i]);
        }
    }

    private void arrayKeywords(SchemaNode n, JsonNode s, String ptr) {
        JsonNode items = s.get("items");
        JsonNode prefix = s.get("prefixItems");
        JsonNode tupleItems = null;
        if (items != null && items.isArray()) {   // draft-7 tuple form
            if (prefix != null) {
                throw new SchemaException(child(ptr, "items"), "'items' as an array together with 'prefixItems'");
            }
            tupleItems = items;
            items = s.get("additionalItems");
        } else if (s.has("additionalItems")) {
            items = items != null ? items : null;   // additionalItems without tuple items has no effect
        }
        JsonNode tuple = prefix != null ? prefix : tupleItems;
        String tupleKey = prefix != null ? "prefixItems" : "items";
        if (tuple != null) {
            if (!tuple.isArray()) {
                throw new SchemaException(child(ptr, tupleKey), "'" + tupleKey + "' must be an array of schemas");
            }
            n.prefixItems = new SchemaNode[tuple.size()];
            for (int i = 0; i < tuple.size(); i++) {
                n.prefixItems[i] = at(child(ptr, tupleKey, Integer.toString(i)));
            }
        }
        String itemsKey = tupleItems != null ? "additionalItems" : "items";
        if (items == null) {
            n.items = anyNode(child(ptr, itemsKey));
        } else if (items.isBoolean() && !items.booleanValue()) {
            n.items = null;
        } else {
            n.items = at(child(ptr, itemsKey));
        }
        n.minItems = count(s, "minItems", ptr, 0);
        n.maxItems = count(s, "maxItems", ptr, Integer.MAX_VALUE);
    }

    private void stringKeywords(SchemaNode n, JsonNode s, String ptr) {
        n.minLength = count(s, "minLength", ptr, 0);
        n.maxLength = count(s, "maxLength", ptr, Integer.MAX_VALUE);
        if (n.minLength > n.maxLength) {
            n.types &= ~SchemaNode.STRING;
        }
        if (n.minItems > n.maxItems) {
            n.types &= ~SchemaNode.ARRAY;
        }
    }

    private static int count(JsonNode s, String key, String ptr, int absent) {
        JsonNode v = s.get(key);
        if (v == null) {
            return absent;
        }
        if (!v.isIntegralNumber() && !(v.isNumber() && v.decimalValue().stripTrailingZeros().scale() <= 0)
                || v.decimalValue().signum() < 0) {
            throw new SchemaException(child(ptr, key), "'" + key + "' must be a non-negative integer, found " + v);
        }
        BigDecimal d = v.decimalValue();
        return d.compareTo(BigDecimal.valueOf(1_000_000)) > 0 ? (absent == 0 ? SchemaNode.INFINITE : Integer.MAX_VALUE)
                : d.intValue();
    }

    private void numberKeywords(SchemaNode n, JsonNode s, String ptr) {
        BigDecimal low = null;
        BigDecimal high = null;
        boolean lowEx = false;
        boolean highEx = false;
        if (s.has("minimum")) {
            low = number(s, "minimum", ptr);
        }
        if (s.has("maximum")) {
            high = number(s, "maximum", ptr);
        }
        JsonNode exMin = s.get("exclusiveMinimum");
        if (exMin != null) {
            if (exMin.isBoolean()) {   // draft 4: a flag on minimum
                lowEx = exMin.booleanValue();
            } else {
                BigDecimal v = number(s, "exclusiveMinimum", ptr);
                if (low == null || v.compareTo(low) >= 0) {
                    low = v;
                    lowEx = true;
                }
            }
        }
        JsonNode exMax = s.get("exclusiveMaximum");
        if (exMax != null) {
            if (exMax.isBoolean()) {
                highEx = exMax.booleanValue();
            } else {
                BigDecimal v = number(s, "exclusiveMaximum", ptr);
                if (high == null || v.compareTo(high) <= 0) {
                    high = v;
                    highEx = true;
                }
            }
        }
        if (low == null && high == null) {
            return;
        }
        n.bounded = true;
        BigDecimal lo = low == null ? BigDecimal.valueOf(-BOUND_LIMIT) : lowEx
                ? low.setScale(0, RoundingMode.FLOOR).add(BigDecimal.ONE) : low.setScale(0, RoundingMode.CEILING);
        BigDecimal hi = high == null ? BigDecimal.valueOf(BOUND_LIMIT) : highEx
                ? high.setScale(0, RoundingMode.CEILING).subtract(BigDecimal.ONE) : high.setScale(0, RoundingMode.FLOOR);
        lo = lo.max(BigDecimal.valueOf(-BOUND_LIMIT));
        hi = hi.min(BigDecimal.valueOf(BOUND_LIMIT));
        if (lo.compareTo(hi) > 0) {
            if ((n.types & (SchemaNode.NUMBER | SchemaNode.INTEGER)) != 0 && s.has("type")
                    && (n.types & ~(SchemaNode.NUMBER | SchemaNode.INTEGER)) == 0) {
                throw new SchemaException(ptr, "the range of minimum/maximum holds no integer; this server "
                        + "generates bounded numbers as integers");
            }
            n.types &= ~(SchemaNode.NUMBER | SchemaNode.INTEGER);
            return;
        }
        n.low = lo.longValueExact();
        n.high = hi.longValueExact();
    }

    private static BigDecimal number(JsonNode s, String key, String ptr) {
        JsonNode v = s.get(key);
        if (!v.isNumber()) {
            throw new SchemaException(child(ptr, key), "'" + key + "' must be a number, found " + v);
        }
        return v.decimalValue();
    }

    private void literals(SchemaNode n, JsonNode s, String ptr) {
        List<byte[]> texts = new ArrayList<>();
        JsonNode e = s.get("enum");
        if (e != null) {
            if (!e.isArray()) {
                throw new SchemaException(child(ptr, "enum"), "'enum' must be an array");
            }
            for (JsonNode v : e) {
                texts.add(compact(v));
            }
        }
        JsonNode c = s.get("const");
        if (c != null) {
            byte[] text = compact(c);
            if (e != null) {
                texts.removeIf(t -> !java.util.Arrays.equals(t, text));
            } else {
                texts.add(text);
            }
        }
        // the node's other keywords still apply: keep its typed form to filter the texts once all is compiled
        var rest = new SchemaNode(ptr);
        rest.types = n.types;
        rest.names = n.names;
        rest.quotedNames = n.quotedNames;
        rest.properties = n.properties;
        rest.required = n.required;
        rest.additional = n.additional;
        rest.prefixItems = n.prefixItems;
        rest.items = n.items;
        rest.minItems = n.minItems;
        rest.maxItems = n.maxItems;
        rest.minLength = n.minLength;
        rest.maxLength = n.maxLength;
        rest.bounded = n.bounded;
        rest.low = n.low;
        rest.high = n.high;
        all.add(rest);
        n.kind = SchemaNode.Kind.LITERALS;
        n.literals = texts;
        literalRest.put(n, rest);
    }

    static byte[] compact(JsonNode v) {
        try {
            return MAPPER.writeValueAsBytes(v);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    // ---- after compilation: reference cycles, shortest texts, literal filtering, oneOf disjointness

    private void finish(SchemaNode top) {
        for (SchemaNode n : all) {
            try {
                n.resolve();
            } catch (IllegalStateException cycle) {
                throw new SchemaException(n.pointer, "'$ref' at " + n.pointer + " refers only to itself");
            }
        }
        shortestTexts();
        for (var entry : literalRest.entrySet()) {
            SchemaNode rest = entry.getValue();
            entry.getKey().literals.removeIf(text -> !SchemaGrammar.accepts(rest, text));
        }
        shortestTexts();
        for (SchemaNode n : oneOfs) {
            checkDisjoint(n);
        }
        if (top.shortest() >= SchemaNode.INFINITE) {
            throw new SchemaException("#", "the schema accepts no value (contradictory or unsatisfiable "
                    + "constraints, e.g. a required property that is forbidden or has no possible value)");
        }
    }

    private void shortestTexts() {
        for (SchemaNode n : all) {
            n.minLength_ = SchemaNode.INFINITE;
        }
        boolean changed = true;
        while (changed) {
            changed = false;
            for (SchemaNode n : all) {
                int m = shortest(n);
                if (m < n.minLength_) {
                    n.minLength_ = m;
                    changed = true;
                }
            }
        }
    }

    /** A node accepting any JSON value (registered, so its shortest text is computed with the rest). */
    private SchemaNode anyNode(String pointer) {
        if (any == null) {
            any = SchemaNode.any(pointer);
            all.add(any);
        }
        return any;
    }

    private SchemaNode any;

    private static int shortest(SchemaNode n) {
        return switch (n.kind) {
            case REF -> n.target.resolve().minLength_;
            case LITERALS -> {
                int m = SchemaNode.INFINITE;
                for (byte[] t : n.literals) {
                    m = Math.min(m, t.length);
                }
                yield m;
            }
            case ALTERNATIVES -> {
                int m = SchemaNode.INFINITE;
                for (SchemaNode a : n.alternatives) {
                    m = Math.min(m, a.shortest());
                }
                yield m;
            }
            case TYPED -> shortestTyped(n);
        };
    }

    static int shortestTyped(SchemaNode n) {
        int m = SchemaNode.INFINITE;
        if ((n.types & SchemaNode.OBJECT) != 0) {
            m = Math.min(m, shortestObject(n));
        }
        if ((n.types & SchemaNode.ARRAY) != 0) {
            m = Math.min(m, shortestArray(n));
        }
        if ((n.types & SchemaNode.STRING) != 0 && n.minLength <= n.maxLength) {
            m = Math.min(m, 2 + n.minLength);
        }
        if ((n.types & (SchemaNode.INTEGER | SchemaNode.NUMBER)) != 0) {
            m = Math.min(m, n.bounded ? shortestInteger(n.low, n.high) : 1);
        }
        if ((n.types & (SchemaNode.BOOLEAN | SchemaNode.NULL)) != 0) {
            m = Math.min(m, 4);
        }
        return m;
    }

    static int shortestObject(SchemaNode n) {
        long sum = 2;
        int count = 0;
        for (int i = 0; i < n.names.length; i++) {
            if (n.required[i]) {
                sum += n.quotedNames[i].length + 1 + n.properties[i].shortest();
                count++;
            }
        }
        sum += Math.max(0, count - 1);
        return (int) Math.min(sum, SchemaNode.INFINITE);
    }

    static int shortestArray(SchemaNode n) {
        if (n.minItems > n.maxItems || n.minItems >= SchemaNode.INFINITE) {
            return SchemaNode.INFINITE;
        }
        if (n.minItems == 0) {
            return 2;
        }
        long sum = 2 + SchemaGrammar.itemsCost(n, 0, n.minItems) - 1;   // no comma before the first item
        return (int) Math.min(sum, SchemaNode.INFINITE);
    }

    static int shortestInteger(long low, long high) {
        if (low <= 0 && high >= 0) {
            return 1;
        }
        return low > 0 ? Long.toString(low).length() : Long.toString(high).length();
    }

    /** oneOf means exactly one: generating from alternatives is only right when no value can match two of them. */
    private static void checkDisjoint(SchemaNode n) {
        List<SchemaNode> alts = n.alternatives;
        int[] budget = {20_000};   // comparisons; a schema needing more is refused rather than stalling the request
        for (int i = 0; i < alts.size(); i++) {
            for (int j = i + 1; j < alts.size(); j++) {
                if (!disjoint(alts.get(i).resolve(), alts.get(j).resolve(), 0, budget)) {
                    throw new SchemaException(child(n.pointer, "oneOf"), "'oneOf' alternatives " + i + " and " + j
                            + " may match the same value; this server supports 'oneOf' only when its alternatives "
                            + "differ in type, in const/enum values or in a required const property (use 'anyOf')");
                }
            }
        }
    }

    private static boolean disjoint(SchemaNode a, SchemaNode b, int depth, int[] budget) {
        if (depth > 8 || --budget[0] < 0) {
            return false;
        }
        if (a.kind == SchemaNode.Kind.ALTERNATIVES) {
            for (SchemaNode x : a.alternatives) {
                if (!disjoint(x.resolve(), b, depth + 1, budget)) {
                    return false;
                }
            }
            return true;
        }
        if (b.kind == SchemaNode.Kind.ALTERNATIVES) {
            return disjoint(b, a, depth + 1, budget);
        }
        if (a.kind == SchemaNode.Kind.LITERALS && b.kind == SchemaNode.Kind.LITERALS) {
            for (byte[] x : a.literals) {
                for (byte[] y : b.literals) {
                    if (java.util.Arrays.equals(x, y)) {
                        return false;
                    }
                }
            }
            return true;
        }
        if (a.kind == SchemaNode.Kind.LITERALS || b.kind == SchemaNode.Kind.LITERALS) {
            SchemaNode lit = a.kind == SchemaNode.Kind.LITERALS ? a : b;
            SchemaNode typed = lit == a ? b : a;
            for (byte[] x : lit.literals) {
                if (SchemaGrammar.accepts(typed, x)) {
                    return false;
                }
            }
            return true;
        }
        int common = a.types & b.types;
        // integer and number overlap through their integers
        if ((common & ~SchemaNode.OBJECT) != 0) {
            return false;
        }
        if (common == 0) {
            return true;
        }
        // both may be objects: a required property whose values differ, or one requires what the other forbids
        for (int i = 0; i < a.names.length; i++) {
            if (!a.required[i]) {
                continue;
            }
            SchemaNode other = b.valueOf(a.names[i]);
            if (other == null || b.property(a.names[i]) >= 0 && b.required[b.property(a.names[i])]
                    && disjoint(a.properties[i].resolve(), other.resolve(), depth + 1, budget)) {
                return true;
            }
        }
        for (int i = 0; i < b.names.length; i++) {
            if (b.required[i] && a.valueOf(b.names[i]) == null) {
                return true;
            }
        }
        return false;
    }
}
