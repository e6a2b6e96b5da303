package aether.llm.server;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.List;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;

/**
 * However the text is split into pieces, the emitted text is exactly the text before the stop string that completes
 * first when read char by char.
 */
class StopMatcherProperties {

    @Provide
    Arbitrary<String> text() {
        return Arbitraries.strings().withChars("abc\n ").ofMaxLength(60);
    }

    @Provide
    Arbitrary<List<String>> stops() {
        return Arbitraries.strings().withChars("abc\n ").ofMinLength(1).ofMaxLength(4).list().ofMaxSize(4);
    }

    @Provide
    Arbitrary<List<Integer>> cuts() {
        return Arbitraries.integers().between(1, 5).list().ofMaxSize(60);
    }

    @Property(tries = 2000)
    void emitsExactlyTheTextBeforeTheFirstStop(@ForAll("text") String text, @ForAll("stops") List<String> stops,
            @ForAll("cuts") List<Integer> cuts) {
        var m = new StopMatcher(stops);
        var out = new StringBuilder();
        int at = 0;
        int i = 0;
        while (at < text.length() && !m.matched()) {
            int n = Math.min(text.length() - at, i < cuts.size() ? cuts.get(i++) : 3);
            String emitted = m.push(text.substring(at, at + n));
            out.append(emitted);
            at += n;
            for (String s : stops) {
                assertThat(out.toString()).as("never shows a stop string").doesNotContain(s);
            }
        }
        out.append(m.flush());
        int first = -1;   // the stop that completes first, reading char by char; ties: the longer one
        int firstEnd = Integer.MAX_VALUE;
        for (String s : stops) {
            int f = text.indexOf(s);
            if (f >= 0 && (f + s.length() < firstEnd || f + s.length() == firstEnd && f < first)) {
                first = f;
                firstEnd = f + s.length();
            }
        }
        assertThat(out.toString()).isEqualTo(first < 0 ? text : text.substring(0, first));
        assertThat(m.matched()).isEqualTo(first >= 0);
    }
}
