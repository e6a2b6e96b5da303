package aether.llm.chat;

import java.time.LocalDateTime;
import java.time.ZonedDateTime;
import java.time.temporal.IsoFields;

/**
 * Python's {@code time.strftime} for the C locale, which is what {@code strftime_now(fmt)} means in Hugging Face
 * templates (Llama 3.x write {@code strftime_now("%d %b %Y")}). Supports the C89/POSIX directives and glibc's
 * {@code %-X} (no padding). An unknown directive is an {@link IllegalArgumentException} naming it, not silently kept,
 * so that a template never renders a half-formatted date.
 */
final class Strftime {

    private static final String[] DAYS = {"Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"};
    private static final String[] MONTHS = {"January", "February", "March", "April", "May", "June", "July", "August",
            "September", "October", "November", "December"};

    private Strftime() {}

    static String format(String fmt, ZonedDateTime t) {
        var out = new StringBuilder(fmt.length() + 16);
        for (int i = 0; i < fmt.length(); i++) {
            char c = fmt.charAt(i);
            if (c != '%') {
                out.append(c);
                continue;
            }
            if (i + 1 >= fmt.length()) {
                throw new IllegalArgumentException("strftime format '" + fmt + "' ends with a lone '%'");
            }
            char d = fmt.charAt(++i);
            boolean pad = true;
            if (d == '-' && i + 1 < fmt.length()) {
                pad = false;
                d = fmt.charAt(++i);
            }
            directive(out, d, pad, t, fmt);
        }
        return out.toString();
    }

    private static void directive(StringBuilder out, char d, boolean pad, ZonedDateTime t, String fmt) {
        LocalDateTime l = t.toLocalDateTime();
        int hour12 = l.getHour() % 12 == 0 ? 12 : l.getHour() % 12;
        switch (d) {
            case 'a' -> out.append(DAYS[l.getDayOfWeek().getValue() - 1], 0, 3);
            case 'A' -> out.append(DAYS[l.getDayOfWeek().getValue() - 1]);
            case 'b', 'h' -> out.append(MONTHS[l.getMonthValue() - 1], 0, 3);
            case 'B' -> out.append(MONTHS[l.getMonthValue() - 1]);
            case 'c' -> {   // C locale: "Sun Nov 22 03:04:05 2026"
                directive(out, 'a', true, t, fmt);
                out.append(' ');
                directive(out, 'b', true, t, fmt);
                out.append(' ');
                num(out, l.getDayOfMonth(), 2, true, ' ');
                out.append(' ');
                directive(out, 'X', true, t, fmt);
                out.append(' ').append(l.getYear());
            }
            case 'd' -> num(out, l.getDayOfMonth(), 2, pad, '0');
            case 'e' -> num(out, l.getDayOfMonth(), 2, pad, ' ');
            case 'H' -> num(out, l.getHour(), 2, pad, '0');
            case 'I' -> num(out, hour12, 2, pad, '0');
            case 'j' -> num(out, l.getDayOfYear(), 3, pad, '0');
            case 'm' -> num(out, l.getMonthValue(), 2, pad, '0');
            case 'M' -> num(out, l.getMinute(), 2, pad, '0');
            case 'p' -> out.append(l.getHour() < 12 ? "AM" : "PM");
            case 'S' -> num(out, l.getSecond(), 2, pad, '0');
            case 'f' -> num(out, l.getNano() / 1000, 6, true, '0');
            case 'u' -> out.append(l.getDayOfWeek().getValue());
            case 'w' -> out.append(l.getDayOfWeek().getValue() % 7);
            case 'y' -> num(out, Math.floorMod(l.getYear(), 100), 2, pad, '0');
            case 'Y' -> out.append(l.getYear());
            case 'C' -> num(out, Math.floorDiv(l.getYear(), 100), 2, pad, '0');
            case 'U' -> num(out, (l.getDayOfYear() + 6 - l.getDayOfWeek().getValue() % 7) / 7, 2, pad, '0');
            case 'W' -> num(out, (l.getDayOfYear() + 6 - (l.getDayOfWeek().getValue() + 6) % 7) / 7, 2, pad, '0');
            case 'V' -> num(out, l.get(IsoFields.WEEK_OF_WEEK_BASED_YEAR), 2, pad, '0');
            case 'G' -> out.append(l.get(IsoFields.WEEK_BASED_YEAR));
            case 'x' -> {   // C locale: "11/22/26"
                directive(out, 'm', true, t, fmt);
                out.append('/');
                directive(out, 'd', true, t, fmt);
                out.append('/');
                directive(out, 'y', true, t, fmt);
            }
            case 'X', 'T' -> {
                directive(out, 'H', true, t, fmt);
                out.append(':');
                directive(out, 'M', true, t, fmt);
                out.append(':');
                directive(out, 'S', true, t, fmt);
            }
            case 'R' -> {
                directive(out, 'H', true, t, fmt);
                out.append(':');
                directive(out, 'M', true, t, fmt);
            }
            case 'D' -> directive(out, 'x', true, t, fmt);
            case 'F' -> {
                out.append(l.getYear()).append('-');
                directive(out, 'm', true, t, fmt);
                out.append('-');
                directive(out, 'd', true, t, fmt);
            }
            case 'z' -> {
                int s = t.getOffset().getTotalSeconds();
                out.append(s < 0 ? '-' : '+');
                s = Math.abs(s);
                num(out, s / 3600, 2, true, '0');
                num(out, s / 60 % 60, 2, true, '0');
            }
            case 'Z' -> out.append(t.getZone().getId().equals("Z") ? "UTC" : t.getZone().getId());
            case 's' -> out.append(t.toEpochSecond());
            case 'n' -> out.append('\n');
            case 't' -> out.append('\t');
            case '%' -> out.append('%');
            default -> throw new IllegalArgumentException(
                    "strftime format '" + fmt + "': unsupported directive '%" + d + "'");
        }
    }

    private static void num(StringBuilder out, int v, int width, boolean pad, char fill) {
        String s = Integer.toString(v);
        if (pad) {
            for (int k = s.length(); k < width; k++) {
                out.append(fill);
            }
        }
        out.append(s);
    }
}
