package aether.llm.generate;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

class StopStringMatcherTest {

    /** Feeds text in random pieces; returns what was emitted and whether a stop matched. */
    private static String run(List<String> stops, String text, Random r, boolean[] stopped) {
        var m = new StopStringMatcher(stops);
        var out = new StringBuilder();
        int i = 0;
        while (i < text.length()) {
            int n = 1 + r.nextInt(4);
            String piece = text.substring(i, Math.min(text.length(), i + n));
            i += piece.length();
            var emitted = new StringBuilder();
            if (m.accept(piece, emitted)) {
                out.append(emitted);
                stopped[0] = true;
                return out.toString();
            }
            out.append(emitted);
            // what was emitted so far never ends with the start of a stop string that later completes
        }
        m.flush(out);
        stopped[0] = false;
        return out.toString();
    }

    @Test
    void shouldEmitEverythingBeforeTheEarliestStopStringAndNothingAfter() {
        Random r = new Random(3);
        String alphabet = "ab c\n";
        for (int trial = 0; trial < 3000; trial++) {
            StringBuilder t = new StringBuilder();
            for (int i = 0, n = r.nextInt(30); i < n; i++) {
                t.append(alphabet.charAt(r.nextInt(alphabet.length())));
            }
            List<String> stops = List.of("ab a", "c\nc", "bb");
            String text = t.toString();
            int first = Integer.MAX_VALUE;
            for (String s : stops) {
                int at = text.indexOf(s);
                if (at >= 0) {
                    first = Math.min(first, at);
                }
            }
            boolean[] stopped = new boolean[1];
            String emitted = run(stops, text, r, stopped);
            if (first == Integer.MAX_VALUE) {
                assertThat(stopped[0]).isFalse();
                assertThat(emitted).isEqualTo(text);
            } else {
                assertThat(stopped[0]).as(text).isTrue();
                assertThat(emitted).as(text).isEqualTo(text.substring(0, first));
            }
        }
    }

    @Test
    void shouldHoldBackOnlyAPossibleStartOfAStopString() {
        var m = new StopStringMatcher(List.of("</end>"));
        var out = new StringBuilder();
        assertThat(m.accept("hello </e", out)).isFalse();
        assertThat(out).hasToString("hello ");
        out.setLength(0);
        assertThat(m.accept("x>", out)).isFalse();
        assertThat(out).hasToString("</ex>");
        out.setLength(0);
        assertThat(m.accept("ok </en", out)).isFalse();
        assertThat(out).hasToString("ok ");
        out.setLength(0);
        assertThat(m.accept("d> tail", out)).isTrue();
        assertThat(out).hasToString("");
        assertThat(m.matched()).isEqualTo("</end>");
    }
}
