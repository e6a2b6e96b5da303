package aether.llm.server;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.networknt.schema.Schema;
import com.networknt.schema.SchemaRegistry;
import com.networknt.schema.SpecificationVersion;
import java.nio.charset.StandardCharsets;
import java.util.List;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.constraints.IntRange;

/**
 * The schema automaton against an independent validator (networknt json-schema-validator, draft 2020-12) on random
 * documents: whatever the automaton accepts parses (duplicate keys refused) and validates; whatever validates (in the
 * compact form it generates) is accepted; and random byte mutations of valid documents are accepted only when they
 * still parse and validate.
 */
class SchemaGrammarProperties {

    static final ObjectMapper STRICT = JsonMapper.builder().enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION)
            .enable(com.fasterxml.jackson.databind.DeserializationFeature.FAIL_ON_TRAILING_TOKENS).build();
    /** Numbers as written (a huge exponent stays a number, not Infinity). */
    static final ObjectMapper EXACT = JsonMapper.builder()
            .enable(com.fasterxml.jackson.databind.DeserializationFeature.USE_BIG_DECIMAL_FOR_FLOATS)
            .enable(com.fasterxml.jackson.databind.DeserializationFeature.USE_BIG_INTEGER_FOR_INTS)
            .nodeFactory(JsonNodeFactory.withExactBigDecimals(true)).build();
    static final JsonNodeFactory F = JsonNodeFactory.instance;
    static final SchemaRegistry REGISTRY = SchemaRegistry.withDefaultDialect(SpecificationVersion.DRAFT_2020_12);

    static final List<String> SCHEMAS = List.of(
            SchemaGrammarTest.PERSON,
            """
            {"type":"object","properties":{"a":{"type":"integer","minimum":-5,"maximum":120},
             "b":{"type":["string","null"],"maxLength":3},"kind":{"enum":["x","y",1,null]}},
             "required":["a","kind"],"additionalProperties":{"type":"boolean"}}""",
            """
            {"type":"array","prefixItems":[{"type":"string","minLength":1},{"type":"number"}],
             "items":{"type":"integer","exclusiveMinimum":0},"minItems":1,"maxItems":4}""",
            """
            {"$defs":{"node":{"type":"object","properties":{"v":{"type":"integer"},
              "next":{"anyOf":[{"$ref":"#/$defs/node"},{"type":"null"}]}},
              "required":["v","next"],"additionalProperties":false}},"$ref":"#/$defs/node"}""",
            """
            {"anyOf":[{"type":"string","minLength":2,"maxLength":4},{"type":"array","items":{"const":{"x":[1,true]}}},
             {"type":"integer","minimum":100}]}""",
            """
            {"oneOf":[{"type":"object","properties":{"kind":{"const":"a"},"x":{"type":"integer"}},
              "required":["kind"],"additionalProperties":false},
             {"type":"object","properties":{"kind":{"const":"b"},"tags":{"type":"array","items":{"type":"string"}}},
              "required":["kind","tags"]}]}""",
            "{}");

    static final SchemaNode[] COMPILED = new SchemaNode[SCHEMAS.size()];
    static final Schema[] VALIDATORS = new Schema[SCHEMAS.size()];

    static {
        for (int i = 0; i < SCHEMAS.size(); i++) {
            COMPILED[i] = SchemaGrammarTest.compile(SCHEMAS.get(i));
            VALIDATORS[i] = REGISTRY.getSchema(SchemaGrammarTest.compile(SCHEMAS.get(i)) == null ? null
                    : parse(SCHEMAS.get(i)));
        }
    }

    static JsonNode parse(String s) {
        try {
            return STRICT.readTree(s);
        } catch (java.io.IOException e) {
            throw new IllegalArgumentException(e);
        }
    }

    static final List<String> KEYS = List.of("name", "age", "tags", "a", "b", "kind", "v", "next", "x", "zz");

    @Provide
    Arbitrary<JsonNode> values() {
        Arbitrary<JsonNode> leaf = Arbitraries.oneOf(
                Arbitraries.strings().withCharRange('a', 'e').withChars('é', '"', '\\', '\n').ofMaxLength(5)
                        .map(F::textNode),
                Arbitraries.of("😀", "a😀", "€€").map(F::textNode),
                Arbitraries.integers().between(-10, 130).map(F::numberNode),
                Arbitraries.integers().between(-3, 3).map(i -> F.numberNode(i + 0.5)),
                Arbitraries.of(F.booleanNode(true), F.booleanNode(false), F.nullNode(), F.textNode("x"),
                        F.textNode("a"), F.textNode("b"), F.numberNode(1)));
        return Arbitraries.recursive(() -> leaf, inner -> Arbitraries.oneOf(
                inner.list().ofMaxSize(4).map(l -> {
                    ArrayNode a = F.arrayNode();
                    l.forEach(a::add);
                    return (JsonNode) a;
                }),
                Arbitraries.of(KEYS).list().uniqueElements().ofMaxSize(4).flatMap(keys ->
                        inner.list().ofSize(keys.size()).map(vals -> {
                            ObjectNode o = F.objectNode();
                            for (int i = 0; i < keys.size(); i++) {
                                o.set(keys.get(i), vals.get(i));
                            }
                            return (JsonNode) o;
                        }))), 3);
    }

    static boolean accepted(int schema, byte[] text) {
        var g = new SchemaGrammar(COMPILED[schema]);
        var s = SchemaGrammar.feed(g.initial(), text);
        return !s.isEmpty() && g.complete(s);
    }

    static boolean valid(int schema, String text) {
        JsonNode node;
        try {
            node = STRICT.readTree(text);
        } catch (java.io.IOException e) {
            return false;
        }
        return node != null && VALIDATORS[schema].validate(node).isEmpty();
    }

    @Property(tries = 3000)
    void acceptsExactlyWhatTheValidatorAccepts(@ForAll @IntRange(min = 0, max = 6) int schema,
            @ForAll("values") JsonNode value) throws Exception {
        String text = STRICT.writeValueAsString(value);
        boolean valid = VALIDATORS[schema].validate(value).isEmpty();
        net.jqwik.api.statistics.Statistics.label("valid under schema " + schema).collect(valid);
        assertThat(accepted(schema, text.getBytes(StandardCharsets.UTF_8)))
                .as("%s under schema %d (valid: %s)", text, schema, valid).isEqualTo(valid);
    }

    @Property(tries = 3000)
    void acceptsAMutatedDocumentOnlyWhenItIsStillValid(@ForAll @IntRange(min = 0, max = 6) int schema,
            @ForAll("values") JsonNode value, @ForAll @IntRange(min = 0, max = 1000) int at,
            @ForAll @IntRange(min = 0, max = 2) int kind, @ForAll("junk") String junk) throws Exception {
        byte[] text = STRICT.writeValueAsBytes(value);
        int p = at % (text.length + 1);
        String s = new String(text, StandardCharsets.UTF_8);
        int cp = Math.min(p, s.length());
        String mutated = switch (kind) {
            case 0 -> s.substring(0, cp) + junk + s.substring(cp);
            case 1 -> cp < s.length() ? s.substring(0, cp) + s.substring(cp + 1) : s + junk;
            default -> cp < s.length() ? s.substring(0, cp) + junk + s.substring(cp + 1) : junk + s;
        };
        if (accepted(schema, mutated.getBytes(StandardCharsets.UTF_8))) {
            assertThat(valid(schema, mutated)).as("accepted %s under schema %d", mutated, schema).isTrue();
        }
    }

    /** Pieces a random walk may append: ASCII, multi-byte characters and whole words. */
    static final List<byte[]> PIECES;

    static {
        var p = new java.util.ArrayList<byte[]>();
        for (int c = 0x20; c < 0x7f; c++) {
            p.add(new byte[] {(byte) c});
        }
        for (String w : List.of("é", "€", "😀", "\n", "\u00e9", "\"", "true", "false", "null", "\"name\"",
                "\"kind\"", "\"tags\"", "\"next\"", "\n", "12", "-3")) {
            p.add(w.getBytes(StandardCharsets.UTF_8));
        }
        PIECES = List.copyOf(p);
    }

    /**
     * A random document of the schema, produced as the sampler produces one: random pieces that keep the text a
     * valid prefix and closable within the budget, ending when complete (at random, or when nothing else fits).
     */
    static String walk(int schema, long seed) {
        var random = new java.util.Random(seed);
        var g = new SchemaGrammar(COMPILED[schema]);
        var state = g.initial();
        var out = new java.io.ByteArrayOutputStream();
        int budget = SchemaGrammar.distance(state) + random.nextInt(80);
        for (int used = 0; ; used++) {
            if (g.complete(state) && (SchemaGrammar.finished(state) || random.nextInt(8) == 0)) {
                return out.toString(StandardCharsets.UTF_8);
            }
            int reach = budget - used - 1;
            int distance = SchemaGrammar.distance(state);
            var options = new java.util.ArrayList<byte[]>();
            var next = new java.util.ArrayList<List<SchemaGrammar.State>>();
            for (byte[] piece : PIECES) {
                var s = SchemaGrammar.feed(state, piece);
                if (!s.isEmpty()) {
                    int d = SchemaGrammar.distance(s);
                    if (d <= reach - piece.length + 1 || d < distance) {
                        options.add(piece);
                        next.add(s);
                    }
                }
            }
            if (options.isEmpty()) {
                assertThat(g.complete(state)).as("stuck after %s", out).isTrue();
                return out.toString(StandardCharsets.UTF_8);
            }
            int k = random.nextInt(options.size());
            out.writeBytes(options.get(k));
            state = next.get(k);
            assertThat(used).as("the walk terminates").isLessThan(10_000);
        }
    }

    @Property(tries = 1500)
    void randomWalksOfTheAutomatonAreValidDocuments(@ForAll @IntRange(min = 0, max = 6) int schema,
            @ForAll long seed) throws Exception {
        String doc = walk(schema, seed);
        assertThat(valid(schema, doc)).as("%s under schema %d", doc, schema).isTrue();
        // the same value written compactly by Jackson is accepted too (unless Jackson escapes a character as a
        // surrogate pair, which generation never does)
        byte[] compact = EXACT.writeValueAsBytes(EXACT.readTree(doc));
        net.jqwik.api.statistics.Statistics.label("walk length").collect(doc.length() < 10 ? "<10"
                : doc.length() < 40 ? "10-39" : "40+");
        String text = new String(compact, StandardCharsets.UTF_8);
        if (text.contains("\\u") || text.matches("(?s).*\\d[eE].*")) {   // or rewrites a number with an exponent
            return;
        }
        assertThat(accepted(schema, compact)).as("%s (compact) under schema %d", new String(compact,
                StandardCharsets.UTF_8), schema).isTrue();
    }

    @Property(tries = 3000)
    void acceptsAMutatedWalkOnlyWhenItIsStillValid(@ForAll @IntRange(min = 0, max = 6) int schema,
            @ForAll long seed, @ForAll @IntRange(min = 0, max = 1000) int at,
            @ForAll @IntRange(min = 0, max = 2) int kind, @ForAll("junk") String junk) throws Exception {
        String s = walk(schema, seed);
        int cp = at % (s.length() + 1);
        String mutated = switch (kind) {
            case 0 -> s.substring(0, cp) + junk + s.substring(cp);
            case 1 -> cp < s.length() ? s.substring(0, cp) + s.substring(cp + 1) : s + junk;
            default -> cp < s.length() ? s.substring(0, cp) + junk + s.substring(cp + 1) : junk + s;
        };
        boolean accepted = accepted(schema, mutated.getBytes(StandardCharsets.UTF_8));
        boolean valid = valid(schema, mutated);
        net.jqwik.api.statistics.Statistics.label("mutation").collect(accepted ? "accepted" : valid
                ? "refused, valid" : "refused, invalid");
        if (accepted) {
            assertThat(valid).as("accepted %s under schema %d", mutated, schema).isTrue();
        }
    }

    @Provide
    Arbitrary<String> junk() {
        return Arbitraries.of("\"", ",", "}", "]", "{", "[", ":", "1", "-", ".", "e", "x", " ", "null", "\\", "0",
                "\"kind\":\"a\",", ",\"zz\":1", "true", "\u0001");
    }
}
