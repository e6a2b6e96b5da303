package aether.llm.tokenizer;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;

/**
 * A fast path for the pre-tokenizer regexes of the form {@code [C]+} and {@code \s?[C]+} where {@code C} is a plain
 * character class of literals and ranges (deepseek's letter, punctuation and CJK classes): membership is a binary
 * search over sorted ranges instead of Java's chain of one predicate per range, which made such a regex the slowest
 * step of a whole encode. The match semantics are the backtracking engine's: at each position, {@code \s} followed by
 * a run of C, else a run of C starting here.
 */
final class ClassRun {

    private final boolean optionalSpace;
    private final int[] starts;
    private final int[] ends;

    private ClassRun(boolean optionalSpace, int[] starts, int[] ends) {
        this.optionalSpace = optionalSpace;
        this.starts = starts;
        this.ends = ends;
    }

    /** The fast path for {@code regex}, or empty when it is not of a supported form. */
    static Optional<ClassRun> of(String regex) {
        boolean space = regex.startsWith("\\s?[");
        String rest = space ? regex.substring(3) : regex;
        if (!rest.startsWith("[") || !rest.endsWith("]+") || rest.startsWith("[^")) {
            return Optional.empty();
        }
        int[] cps = rest.substring(1, rest.length() - 2).codePoints().toArray();
        List<int[]> ranges = new ArrayList<>();
        for (int i = 0; i < cps.length; ) {
            int lo;
            int[] next = new int[1];
            lo = literal(cps, i, next);
            if (lo < 0) {
                return Optional.empty();
            }
            i = next[0];
            int hi = lo;
            if (i + 1 < cps.length && cps[i] == '-') {
                hi = literal(cps, i + 1, next);
                if (hi < lo) {
                    return Optional.empty();
                }
                i = next[0];
            }
            ranges.add(new int[] {lo, hi});
        }
        ranges.sort((a, b) -> Integer.compare(a[0], b[0]));
        List<int[]> merged = new ArrayList<>();
        for (int[] r : ranges) {
            if (!merged.isEmpty() && r[0] <= merged.getLast()[1] + 1) {
                merged.getLast()[1] = Math.max(merged.getLast()[1], r[1]);
            } else {
                merged.add(r.clone());
            }
        }
        return Optional.of(new ClassRun(space, merged.stream().mapToInt(r -> r[0]).toArray(),
                merged.stream().mapToInt(r -> r[1]).toArray()));
    }

    /** The literal at {@code cps[i]} (a plain character or an escaped punctuation character), or -1. */
    private static int literal(int[] cps, int i, int[] next) {
        int c = cps[i];
        if (c == '\\') {
            if (i + 1 >= cps.length || Character.isLetterOrDigit(cps[i + 1])) {
                return -1; // \s, \p{..}, \x.. and the like are not plain literals
            }
            next[0] = i + 2;
            return cps[i + 1];
        }
        if (c == '[' || c == ']' || (c == '&' && i + 1 < cps.length && cps[i + 1] == '&')) {
            return -1;
        }
        next[0] = i + 1;
        return c;
    }

    boolean contains(int cp) {
        int i = Arrays.binarySearch(starts, cp);
        if (i >= 0) {
            return true;
        }
        int before = -i - 2;
        return before >= 0 && cp <= ends[before];
    }

    /** ECMAScript/Java {@code \s}: space, \t, \n, \v, \f, \r (the text has non-ASCII whitespace mapped to \v). */
    private static boolean isSpace(int cp) {
        return cp == ' ' || (cp >= '\t' && cp <= '\r');
    }

    /** Splits {@code text[start, end)} like {@code RegexSplitter}'s regex path, appending piece lengths to out. */
    void split(int[] text, int start, int end, IntList out) {
        int pieceStart = start;
        int p = start;
        while (p < end) {
            int matchStart;
            int runFrom;
            if (optionalSpace && isSpace(text[p]) && p + 1 < end && contains(text[p + 1])) {
                matchStart = p;
                runFrom = p + 1;
            } else if (contains(text[p])) {
                matchStart = p;
                runFrom = p;
            } else {
                p++;
                continue;
            }
            int q = runFrom;
            while (q < end && contains(text[q])) {
                q++;
            }
            if (matchStart > pieceStart) {
                out.add(matchStart - pieceStart);
            }
            out.add(q - matchStart);
            pieceStart = q;
            p = q;
        }
        if (pieceStart < end) {
            out.add(end - pieceStart);
        }
    }
}
