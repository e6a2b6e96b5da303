package aether.llm.generate;

import java.util.List;

/**
 * Finds stop strings in streamed text without ever emitting one: text is passed on only once it can no longer be
 * the start of a stop string; a suffix that could be is held back until the next piece decides. Allocation-free once
 * its buffer has grown. One per generation; not thread-safe.
 */
final class StopStringMatcher {

    private final String[] stops;
    private final int longest;
    private final StringBuilder pending = new StringBuilder(64);
    private String matched;

    StopStringMatcher(List<String> stops) {
        this.stops = stops.toArray(String[]::new);
        int max = 0;
        for (String s : this.stops) {
            max = Math.max(max, s.length());
        }
        this.longest = max;
    }

    /**
     * Adds {@code piece}; appends to {@code out} the text that is now final. Returns true when a stop string was
     * found: {@code out} then got the text before it, and everything from the stop string on is dropped.
     */
    boolean accept(CharSequence piece, StringBuilder out) {
        if (stops.length == 0) {
            out.append(piece);
            return false;
        }
        pending.append(piece);   // pending holds less than the longest stop string before this
        int first = -1;
        String which = null;
        for (String stop : stops) {
            int at = pending.indexOf(stop);
            if (at >= 0 && (first < 0 || at < first)) {
                first = at;
                which = stop;
            }
        }
        if (first >= 0) {
            out.append(pending, 0, first);
            pending.setLength(0);
            matched = which;
            return true;
        }
        int hold = heldBack();
        int release = pending.length() - hold;
        out.append(pending, 0, release);
        pending.delete(0, release);
        return false;
    }

    /** The generation ended: the held-back text is final. */
    void flush(StringBuilder out) {
        out.append(pending);
        pending.setLength(0);
    }

    /** The stop string that matched, or null. */
    String matched() {
        return matched;
    }

    /** Length of the longest suffix of {@code pending} that is a proper prefix of some stop string. */
    private int heldBack() {
        int n = pending.length();
        for (int length = Math.min(n, longest - 1); length > 0; length--) {
            for (String stop : stops) {
                if (stop.length() > length && startsWithSuffix(stop, n - length, length)) {
                    return length;
                }
            }
        }
        return 0;
    }

    private boolean startsWithSuffix(String stop, int from, int length) {
        for (int i = 0; i < length; i++) {
            if (pending.charAt(from + i) != stop.charAt(i)) {
                return false;
            }
        }
        return true;
    }
}
