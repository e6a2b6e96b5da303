package aether.llm.chat;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.ObjectMapper;
import java.util.List;
import java.util.Map;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;

/** json.dumps invariants: floats round-trip in Python's repr form; any string survives a JSON parser unchanged. */
class PythonJsonProperties {

    @Property(tries = 2000)
    void shouldWriteFloatsThatRoundTripInPythonReprForm(@ForAll double d) {
        String repr = PythonJson.floatRepr(d);

        if (Double.isFinite(d)) {
            assertThat(Double.parseDouble(repr)).isEqualTo(d);
            // Python: positional for 1e-4 <= |d| < 1e16 (always with a '.'), else d.ddde±XX.
            double a = Math.abs(d);
            if (a != 0 && (a < 1e-4 || a >= 1e16)) {
                assertThat(repr).matches("-?\\d(\\.\\d+)?e[+-]\\d\\d+");
            } else {
                assertThat(repr).matches("-?\\d+\\.\\d+");
            }
        }
    }

    @Property(tries = 500)
    void shouldEscapeAnyStringSoThatAJsonParserReadsItBack(@ForAll("text") String s) throws Exception {
        String json = PythonJson.dumps(Map.of("k", List.of(s)), PythonJson.DEFAULT);

        assertThat(new ObjectMapper().readValue(json, Object.class)).isEqualTo(Map.of("k", List.of(s)));
        assertThat(json.chars().noneMatch(c -> c < 0x20)).isTrue();
        String ascii = PythonJson.dumps(s, PythonJson.Options.of(true, -1, null, null, false));
        assertThat(ascii.chars().allMatch(c -> c >= 0x20 && c < 0x7f)).isTrue();
        assertThat(new ObjectMapper().readValue(ascii, String.class)).isEqualTo(s);
    }

    @Provide
    Arbitrary<String> text() {
        return Arbitraries.strings().all().ofMaxLength(40);
    }
}
