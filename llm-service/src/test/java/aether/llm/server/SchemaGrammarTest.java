package aether.llm.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import aether.llm.server.JsonSchemaCompiler.SchemaException;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.charset.StandardCharsets;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The schema compiler and its byte automaton: what it accepts, refuses, and how far each prefix is from complete. */
class SchemaGrammarTest {

    static final ObjectMapper JSON = new ObjectMapper();

    static SchemaNode compile(String schema) {
        try {
            return JsonSchemaCompiler.compile(JSON.readTree(schema));
        } catch (java.io.IOException e) {
            throw new IllegalArgumentException(e);
        }
    }

    static List<SchemaGrammar.State> feed(SchemaGrammar g, String text) {
        return SchemaGrammar.feed(g.initial(), text.getBytes(StandardCharsets.UTF_8));
    }

    /** Whole documents: accepted ones are complete; rejected ones either die or stay incomplete. */
    static void check(String schema, List<String> accepted, List<String> rejected) {
        var g = new SchemaGrammar(compile(schema));
        for (String a : accepted) {
            var s = feed(g, a);
            assertThat(s).as("%s is a valid prefix of %s", a, schema).isNotEmpty();
            assertThat(g.complete(s)).as("%s is complete under %s", a, schema).isTrue();
            assertThat(SchemaGrammar.distance(s)).isZero();
        }
        for (String r : rejected) {
            var s = feed(g, r);
            assertThat(!s.isEmpty() && g.complete(s)).as("%s is refused under %s", r, schema).isFalse();
        }
    }

    static final String PERSON = """
            {"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer"},
             "tags":{"type":"array","items":{"type":"string"}}},
             "required":["name"],"additionalProperties":false}""";

    @Test
    void shouldAcceptObjectsWithRequiredAndOptionalKeysInAnyOrderAndNothingElse() {
        check(PERSON, List.of("{\"name\":\"x\"}", "{\"age\":3,\"name\":\"x\"}", "{ \"name\" : \"x\" , \"age\" : -12 }",
                "{\"name\":\"\",\"tags\":[\"a\",\"b\"]}", "{\"name\":\"\\u00e9\\n\"}"),
                List.of("{}", "{\"age\":3}", "{\"name\":\"x\",\"extra\":1}", "{\"name\":1}", "{\"age\":1.5,\"name\":\"a\"}",
                        "{\"name\":\"a\",\"name\":\"b\"}", "[]", "\"x\"", "{\"name\":\"x\"}}", "{\"name\":\"x\",}",
                        "{\"name\":\"a\u0001\"}", "{\"name\":\"\\ud800\"}", "{\"tags\":[1],\"name\":\"\"}"));
        var g = new SchemaGrammar(compile(PERSON));
        assertThat(feed(g, "{\"na")).isNotEmpty();
        assertThat(feed(g, "{\"x")).isEmpty();
        assertThat(feed(g, "{\"name\":\"a\",\"")).isNotEmpty();
        assertThat(feed(g, "{\"name\":\"a\",\"n")).as("a used key is not offered again").isEmpty();
    }

    @Test
    void shouldMeasureTheShortestCompletion() {
        var g = new SchemaGrammar(compile(PERSON));
        assertThat(SchemaGrammar.distance(g.initial())).isEqualTo("{\"name\":\"\"}".length());
        assertThat(SchemaGrammar.distance(feed(g, "{\"name\":\"ab"))).isEqualTo(2);
        assertThat(SchemaGrammar.distance(feed(g, "{\"ag"))).isEqualTo("e\":0,\"name\":\"\"}".length());
        assertThat(SchemaGrammar.distance(feed(g, "{\"tags\":["))).isEqualTo("],\"name\":\"\"}".length());
        var bounded = new SchemaGrammar(compile("{\"type\":\"integer\",\"minimum\":100,\"maximum\":250}"));
        assertThat(SchemaGrammar.distance(bounded.initial())).isEqualTo(3);
        assertThat(SchemaGrammar.distance(feed(bounded, "2"))).isEqualTo(2);
        assertThat(SchemaGrammar.distance(feed(bounded, "25"))).isEqualTo(1);
        var strings = new SchemaGrammar(compile("{\"type\":\"string\",\"minLength\":3}"));
        assertThat(SchemaGrammar.distance(feed(strings, "\"a"))).isEqualTo(3);
        var arrays = new SchemaGrammar(compile("{\"type\":\"array\",\"items\":{\"const\":\"ab\"},\"minItems\":2}"));
        assertThat(SchemaGrammar.distance(arrays.initial())).isEqualTo("[\"ab\",\"ab\"]".length());
        assertThat(SchemaGrammar.distance(feed(arrays, "[\"ab\""))).isEqualTo(",\"ab\"]".length());
    }

    @Test
    void shouldEnforceEnumsConstsAndTypeLists() {
        check("{\"enum\":[\"red\",\"green\",3,null,{\"a\":[1]}]}", List.of("\"red\"", "\"green\"", "3", "null",
                "{\"a\":[1]}"), List.of("\"blue\"", "4", "33", "\"re\"", "{\"a\":[2]}", "true"));
        check("{\"const\":\"only\"}", List.of("\"only\""), List.of("\"onl\"", "\"only1\""));
        check("{\"type\":[\"string\",\"null\"]}", List.of("\"x\"", "null"), List.of("1", "true", "{}"));
        check("{\"type\":\"string\",\"enum\":[\"a\",1,\"b\"]}", List.of("\"a\"", "\"b\""), List.of("1"));
        check("{\"type\":\"boolean\"}", List.of("true", "false"), List.of("tru", "null", "0"));
    }

    @Test
    void shouldEnforceArrayShapes() {
        check("{\"type\":\"array\",\"items\":{\"type\":\"boolean\"},\"minItems\":2,\"maxItems\":3}",
                List.of("[true,false]", "[ true , false , true ]"),
                List.of("[true]", "[]", "[true,true,true,true]", "[\"x\",true]"));
        check("{\"type\":\"array\",\"prefixItems\":[{\"type\":\"string\"},{\"type\":\"integer\"}],\"items\":false}",
                List.of("[\"a\",1]", "[\"a\"]", "[]"), List.of("[\"a\",1,2]", "[1]", "[\"a\",\"b\"]"));
        check("{\"type\":\"array\",\"items\":[{\"type\":\"null\"}],\"additionalItems\":{\"type\":\"integer\"}}",
                List.of("[null,1,2]", "[null]"), List.of("[1]", "[null,null]"));
    }

    @Test
    void shouldCountStringLengthsInCodePoints() {
        check("{\"type\":\"string\",\"minLength\":2,\"maxLength\":3}",
                List.of("\"ab\"", "\"abc\"", "\"é€\"", "\"\\n\\u00e9\"", "\"😀😀\""),
                List.of("\"a\"", "\"abcd\"", "\"😀\"", "\"\\u00e9\"", "\"a\\\""));
        var g = new SchemaGrammar(compile("{\"type\":\"string\"}"));
        assertThat(SchemaGrammar.feed(g.initial(), new byte[] {'"', (byte) 0xc0, (byte) 0x80})).as("overlong")
                .isEmpty();
        assertThat(SchemaGrammar.feed(g.initial(), new byte[] {'"', (byte) 0xed, (byte) 0xa0})).as("surrogate")
                .isEmpty();
    }

    @Test
    void shouldKeepBoundedIntegersInRangeDigitByDigit() {
        String s = "{\"type\":\"integer\",\"minimum\":10,\"maximum\":20}";
        check(s, List.of("10", "15", "20"), List.of("9", "21", "100", "-1", "1", "015", "10.0"));
        var g = new SchemaGrammar(compile(s));
        assertThat(feed(g, "2")).isNotEmpty();
        assertThat(feed(g, "3")).isEmpty();
        assertThat(feed(g, "0")).isEmpty();
        assertThat(feed(g, "-")).isEmpty();
        check("{\"type\":\"integer\",\"minimum\":-20,\"maximum\":-10}", List.of("-15", "-10", "-20"),
                List.of("-9", "-21", "15", "-"));
        check("{\"type\":\"number\",\"exclusiveMinimum\":0,\"exclusiveMaximum\":3}", List.of("1", "2"),
                List.of("0", "3", "0.5", "-1"));
        check("{\"type\":\"integer\",\"minimum\":0}", List.of("0", "7", "123456789"), List.of("-1", "1.5", "1e3"));
        check("{\"type\":\"number\"}", List.of("0", "-1.5e-3", "12.25", "1E9"), List.of("01", "1.", "-", ".5", "1e"));
        check("{\"type\":\"integer\"}", List.of("-7", "0"), List.of("1.0", "1e2", "-0.5"));
    }

    @Test
    void shouldFollowAlternativesAndReferences() {
        check("{\"anyOf\":[{\"type\":\"string\",\"maxLength\":2},{\"type\":\"integer\",\"minimum\":5}]}",
                List.of("\"ab\"", "5", "99"), List.of("\"abc\"", "4", "null"));
        String list = """
                {"$defs":{"node":{"type":"object","properties":{"v":{"type":"integer"},
                  "next":{"anyOf":[{"$ref":"#/$defs/node"},{"type":"null"}]}},
                  "required":["v","next"],"additionalProperties":false}},
                 "$ref":"#/$defs/node"}""";
        check(list, List.of("{\"v\":1,\"next\":null}", "{\"v\":1,\"next\":{\"next\":{\"v\":3,\"next\":null},\"v\":2}}"),
                List.of("{\"v\":1}", "{\"v\":1,\"next\":{\"v\":2}}"));
        var g = new SchemaGrammar(compile(list));
        assertThat(SchemaGrammar.distance(g.initial())).isEqualTo("{\"v\":0,\"next\":null}".length());
        check("{\"definitions\":{\"c\":{\"enum\":[\"x\",\"y\"]}},\"type\":\"array\",\"items\":{\"$ref\":\"#/definitions/c\"}}",
                List.of("[\"x\",\"y\"]", "[]"), List.of("[\"z\"]"));
        check("{\"oneOf\":[{\"type\":\"object\",\"properties\":{\"kind\":{\"const\":\"a\"},\"x\":{\"type\":\"integer\"}},"
                + "\"required\":[\"kind\"]},{\"type\":\"object\",\"properties\":{\"kind\":{\"const\":\"b\"}},"
                + "\"required\":[\"kind\"]}]}", List.of("{\"kind\":\"a\",\"x\":1}", "{\"kind\":\"b\"}"),
                List.of("{\"kind\":\"c\"}", "{}"));
        check("{\"allOf\":[{\"type\":\"integer\"}],\"description\":\"one\"}", List.of("1"), List.of("\"1\""));
        check("{\"type\":\"string\",\"nullable\":true,\"format\":\"date\",\"title\":\"t\"}", List.of("null", "\"d\""),
                List.of("1"));
    }

    @Test
    void shouldAllowFreeKeysWithoutDuplicatesWhenAdditionalPropertiesAreAllowed() {
        check("{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\"}},"
                + "\"additionalProperties\":{\"type\":\"string\"}}",
                List.of("{}", "{\"a\":1,\"b\":\"x\"}", "{\"zz\":\"\",\"a\":2}"),
                List.of("{\"a\":\"x\"}", "{\"b\":1}", "{\"b\":\"x\",\"b\":\"y\"}", "{\"a\":1,\"a\":2}"));
        check("{}", List.of("{\"k\":[1,{\"x\":null}]}", "\"s\"", "-2.5", "[]"), List.of("{\"k\":}", "[1,]"));
    }

    @Test
    void shouldBoundWhitespaceAndFinishAfterTheValue() {
        var g = new SchemaGrammar(compile("{\"type\":\"object\"}"));
        assertThat(feed(g, "{    ")).isNotEmpty();
        assertThat(feed(g, "{     ")).isEmpty();
        var done = feed(g, "{}");
        assertThat(SchemaGrammar.finished(done)).isTrue();
        assertThat(SchemaGrammar.feed(done, " ".getBytes())).isEmpty();
        var number = new SchemaGrammar(compile("{\"type\":\"number\"}"));
        String digits = "1." + "2".repeat(SchemaGrammar.MAX_NUMBER_BYTES - 3);   // one byte below the cap
        assertThat(number.complete(feed(number, digits + "3"))).as("a number of exactly the cap").isTrue();
        assertThat(feed(number, digits + "e")).as("no room left for an exponent digit").isEmpty();
        assertThat(number.complete(feed(number, "1" + "2".repeat(SchemaGrammar.MAX_NUMBER_BYTES - 3) + "e1")))
                .isTrue();
        var num = new SchemaGrammar(compile("{\"type\":\"integer\"}"));
        var twelve = feed(num, "12");
        assertThat(num.complete(twelve)).isTrue();
        assertThat(SchemaGrammar.finished(twelve)).as("more digits may follow").isFalse();
    }

    @Test
    void shouldReadFixedTextAroundTheValue() {
        var g = new SchemaGrammar(List.of(new SchemaGrammar.Text("<tool_call>\n".getBytes()),
                new SchemaGrammar.Value(compile("{\"type\":\"integer\"}")), new SchemaGrammar.Text("\n</tool_call>".getBytes())));
        assertThat(g.complete(feed(g, "<tool_call>\n42\n</tool_call>"))).isTrue();
        assertThat(feed(g, "<tool_call>\n42 \n</tool_call>")).isEmpty();
        assertThat(feed(g, "<tool_x")).isEmpty();
        assertThat(SchemaGrammar.distance(feed(g, "<tool_call>\n4"))).isEqualTo("\n</tool_call>".length());
    }

    @org.junit.jupiter.api.Test
    @org.junit.jupiter.api.Timeout(10)
    void shouldStayLinearOnSelfReferentialAndExponentialAlternatives() {
        // an alternative that is itself (through $ref): expanded once, no endless recursion
        check("{\"$defs\":{\"a\":{\"anyOf\":[{\"$ref\":\"#/$defs/a\"},{\"type\":\"null\"}]}},\"$ref\":\"#/$defs/a\"}",
                List.of("null"), List.of("1"));
        // 40 levels, each referring twice to the next: 2^40 paths, 41 distinct nodes
        var defs = new StringBuilder("{\"$defs\":{");
        for (int i = 0; i < 40; i++) {
            defs.append("\"d").append(i).append("\":{\"anyOf\":[{\"$ref\":\"#/$defs/d").append(i + 1)
                    .append("\"},{\"$ref\":\"#/$defs/d").append(i + 1).append("\"}]},");
        }
        defs.append("\"d40\":{\"type\":\"integer\"}},\"$ref\":\"#/$defs/d0\"}");
        check(defs.toString(), List.of("12"), List.of("\"x\""));
        // a large minItems is priced by arithmetic, not by a loop per item
        var g = new SchemaGrammar(compile("{\"type\":\"array\",\"items\":{\"const\":1},\"minItems\":900000}"));
        assertThat(SchemaGrammar.distance(g.initial())).isEqualTo(2 + 900000 * 2 - 1);
        assertThat(SchemaGrammar.distance(feed(g, "[1,1"))).isEqualTo(1 + (900000 - 2) * 2);
    }

    @Test
    void shouldRefuseUnsupportedKeywordsNamingThemAndTheirPointer() {
        assertThatThrownBy(() -> compile("{\"type\":\"object\",\"properties\":{\"zip\":{\"type\":\"string\","
                + "\"pattern\":\"^[0-9]+$\"}}}"))
                .isInstanceOfSatisfying(SchemaException.class, e -> {
                    assertThat(e.getMessage()).contains("'pattern'");
                    assertThat(e.pointer).isEqualTo("#/properties/zip/pattern");
                });
        for (String k : List.of("not", "if", "uniqueItems", "multipleOf", "patternProperties", "minProperties")) {
            assertThatThrownBy(() -> compile("{\"" + k + "\":{}}")).isInstanceOf(SchemaException.class)
                    .hasMessageContaining("'" + k + "'");
        }
        assertThatThrownBy(() -> compile("{\"$ref\":\"#/$defs/missing\"}")).isInstanceOf(SchemaException.class)
                .hasMessageContaining("#/$defs/missing");
        assertThatThrownBy(() -> compile("{\"$ref\":\"http://example.com/s.json\"}"))
                .isInstanceOf(SchemaException.class);
        assertThatThrownBy(() -> compile("{\"type\":\"object\",\"required\":[\"a\"],\"additionalProperties\":false}"))
                .isInstanceOf(SchemaException.class).hasMessageContaining("accepts no value");
        assertThatThrownBy(() -> compile("{\"oneOf\":[{\"type\":\"integer\"},{\"type\":\"number\"}]}"))
                .isInstanceOf(SchemaException.class).hasMessageContaining("oneOf");
        assertThatThrownBy(() -> compile("{\"type\":\"number\",\"minimum\":0.1,\"maximum\":0.9}"))
                .isInstanceOf(SchemaException.class).hasMessageContaining("integer");
        assertThatThrownBy(() -> compile("{\"type\":\"strin\"}")).isInstanceOf(SchemaException.class)
                .hasMessageContaining("strin");
        assertThatThrownBy(() -> compile("{\"anyOf\":[{\"type\":\"string\"}],\"minLength\":2}"))
                .isInstanceOf(SchemaException.class).hasMessageContaining("minLength");
    }
}
