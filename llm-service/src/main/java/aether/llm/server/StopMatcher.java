package aether.llm.server;

import java.util.List;

/**
 * Cuts generated text at the first stop string to complete, holding back a tail that could still become one, so a client never
 * sees any part of a stop string. One per request; engine thread only.
 */
final class StopMatcher {

    private final List<String> stops;
    private final StringBuilder held = new StringBuilder();
    private boolean matched;

    StopMatcher(List<String> stops) {
        this.stops = stops;
    }

    /** Adds {@code text}; returns the part that is now safe to emit (up to a stop string, if one matched). */
    String push(CharSequence text) {
        if (matched) {
            return "";
        }
        held.append(text);
        if (stops.isEmpty()) {
            String out = held.toString();
            held.setLength(0);
            return out;
        }
        // the stop string that completes first wins (ties: the longer one), as if the text came one char at a time,
        // so the cut does not depend on how the text was split into tokens
        int first = -1;
        int firstEnd = Integer.MAX_VALUE;
        for (String s : stops) {
            int at = held.indexOf(s);
            if (at >= 0 && (at + s.length() < firstEnd || at + s.length() == firstEnd && at < first)) {
                first = at;
                firstEnd = at + s.length();
            }
        }
        if (first >= 0) {
            matched = true;
            String out = held.substring(0, first);
            held.setLength(0);
            return out;
        }
        int keep = 0;
        for (String s : stops) {
            for (int k = Math.min(s.length() - 1, held.length()); k > keep; k--) {
                if (endsWithPrefix(held, s, k)) {
                    keep = k;
                    break;
                }
            }
        }
        String out = held.substring(0, held.length() - keep);
        held.delete(0, held.length() - keep);
        return out;
    }

    /** Whether the last {@code k} chars of {@code text} equal the first {@code k} of {@code stop}. */
    private static boolean endsWithPrefix(StringBuilder text, String stop, int k) {
        int base = text.length() - k;
        for (int i = 0; i < k; i++) {
            if (text.charAt(base + i) != stop.charAt(i)) {
                return false;
            }
        }
        return true;
    }

    boolean matched() {
        return matched;
    }

    /** The held-back tail at the end of generation (it never became a stop string). */
    String flush() {
        String out = matched ? "" : held.toString();
        held.setLength(0);
        return out;
    }
}
