package aether.llm.server;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.charset.StandardCharsets;
import java.util.List;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.constraints.IntRange;
import org.junit.jupiter.api.Test;

/** The JSON-object recognizer against Jackson: what Jackson writes is accepted at every split; what it rejects is too. */
class JsonPrefixProperties {

    static final ObjectMapper MAPPER = new ObjectMapper()
            .enable(com.fasterxml.jackson.databind.DeserializationFeature.FAIL_ON_TRAILING_TOKENS);

    @Provide
    Arbitrary<String> values() {
        Arbitrary<String> leaf = Arbitraries.oneOf(
                Arbitraries.strings().ofMaxLength(8).map(JsonPrefixProperties::quote),
                Arbitraries.integers().map(String::valueOf),
                Arbitraries.doubles().between(-1e6, 1e6).map(String::valueOf),
                Arbitraries.of("true", "false", "null", "1e5", "-0.5E-3", "0", "\"\\u00e9\\n\\\"\""));
        return Arbitraries.recursive(() -> leaf, inner -> Arbitraries.oneOf(
                inner.list().ofMaxSize(3).map(l -> "[" + String.join(", ", l) + "]"),
                Arbitraries.strings().alpha().ofMaxLength(5).list().ofMaxSize(3).flatMap(keys ->
                        inner.list().ofSize(keys.size()).map(vals -> object(keys, vals)))), 4);
    }

    static String object(List<String> keys, List<String> values) {
        var sb = new StringBuilder("{");
        for (int i = 0; i < keys.size(); i++) {
            sb.append(i == 0 ? "" : ",\n ").append(quote(keys.get(i))).append(": ").append(values.get(i));
        }
        return sb.append('}').toString();
    }

    static String quote(String s) {
        try {
            return MAPPER.writeValueAsString(s);
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    @Property(tries = 500)
    void acceptsEveryObjectJacksonParsesAtAnySplit(@ForAll("values") String value, @ForAll @IntRange(min = 1, max = 7)
            int piece) throws Exception {
        String json = "{\"v\": " + value + "}";
        JsonNode parsed = MAPPER.readTree(json);
        assertThat(parsed.isObject()).isTrue();
        byte[] bytes = json.getBytes(StandardCharsets.UTF_8);
        var p = new JsonPrefix();
        for (int at = 0; at < bytes.length; at += piece) {
            byte[] chunk = java.util.Arrays.copyOfRange(bytes, at, Math.min(bytes.length, at + piece));
            assertThat(p.feed(chunk)).as("%s at byte %d", json, at).isTrue();
            assertThat(p.complete()).isEqualTo(at + chunk.length == bytes.length);
        }
    }

    @Property(tries = 1000)
    void rejectsWhatJacksonRejects(@ForAll("values") String value, @ForAll @IntRange(min = 0, max = 200) int cut,
            @ForAll("junk") String junk) {
        String json = "{\"v\": " + value + "}";
        String broken = json.substring(0, Math.min(cut, json.length())) + junk + json.substring(Math.min(cut,
                json.length()));
        boolean jackson;
        try {
            JsonNode n = MAPPER.readTree(broken);
            jackson = n != null && n.isObject() && !broken.contains("     ");
        } catch (Exception e) {
            jackson = false;
        }
        var p = new JsonPrefix();
        boolean ours = p.feed(broken.getBytes(StandardCharsets.UTF_8)) && p.complete();
        if (!broken.strip().equals(broken)) {
            ours = ours || jackson;   // leading/trailing blanks: Jackson allows them, a finished object takes none
        }
        assertThat(ours).as(broken).isEqualTo(jackson);
    }

    @Provide
    Arbitrary<String> junk() {
        return Arbitraries.of("", ",", "}", "]", "\"", ":", "tru", "01", "-", "1.", "\\", "\u0001", "{", "[", " ", "x",
                "1e", "nul", "\"a\"");
    }

    @Test
    void shouldStopAtTheEndOfTheObjectAndCapWhitespace() {
        var p = new JsonPrefix();
        assertThat(p.feed("{\"a\": [1, 2.5e-3, true, null, {}]}".getBytes())).isTrue();
        assertThat(p.complete()).isTrue();
        assertThat(new JsonPrefix().feed("[1]".getBytes())).as("the top level is an object").isFalse();
        assertThat(new JsonPrefix().feed("{     ".getBytes())).as("at most 4 blanks in a row").isFalse();
        var done = new JsonPrefix();
        done.feed("{}".getBytes());
        assertThat(done.feed(" ".getBytes())).as("nothing after the object").isFalse();
        assertThat(new JsonPrefix().feed("{\"a\":".concat("[".repeat(40)).getBytes())).isFalse();
    }

    /** From every prefix of an object, single bytes that lower {@link JsonPrefix#distance()} complete it in that many. */
    @Property(tries = 300)
    void closesFromAnyPrefixInExactlyTheDistance(@ForAll("values") String value,
            @ForAll @IntRange(min = 0, max = 400) int cut) {
        String json = "{\"v\": " + value + "}";
        byte[] bytes = json.getBytes(StandardCharsets.UTF_8);
        var state = new JsonPrefix();
        assertThat(state.feed(java.util.Arrays.copyOf(bytes, Math.min(cut, bytes.length)))).isTrue();
        int distance = state.distance();
        var closed = new StringBuilder();
        var trial = new JsonPrefix();
        for (int step = 0; step < distance; step++) {
            int before = state.distance();
            boolean advanced = false;
            for (int c = 0x20; c < 0x7f && !advanced; c++) {
                trial.copyFrom(state);
                if (trial.feed(new byte[] {(byte) c}) && trial.distance() < before) {
                    state.feed(new byte[] {(byte) c});
                    closed.append((char) c);
                    advanced = true;
                }
            }
            assertThat(advanced).as("%s + %s", json.substring(0, Math.min(cut, json.length())), closed).isTrue();
        }
        assertThat(state.complete()).as("%s + %s", json.substring(0, Math.min(cut, json.length())), closed).isTrue();
    }
}
