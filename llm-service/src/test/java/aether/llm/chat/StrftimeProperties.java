package aether.llm.chat;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Instant;
import java.time.ZoneOffset;
import java.time.ZonedDateTime;
import java.time.format.DateTimeFormatter;
import java.time.temporal.WeekFields;
import java.util.Locale;
import net.jqwik.api.Example;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.constraints.LongRange;

/** Python strftime directives against java.time's own formatting of the same instant (C/English locale). */
class StrftimeProperties {

    @Property(tries = 500)
    void shouldAgreeWithJavaTimeForEveryNumericAndNameDirective(
            @ForAll @LongRange(min = -30_000_000_000L, max = 250_000_000_000L) long epochSecond) {
        ZonedDateTime t = Instant.ofEpochSecond(epochSecond).atZone(ZoneOffset.UTC);
        String expected = DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm:ss|hh a|EEEE EEE MMMM MMM|DDD|yy", Locale.ENGLISH)
                .format(t);

        assertThat(Strftime.format("%Y-%m-%d %H:%M:%S|%I %p|%A %a %B %b|%j|%y", t)).isEqualTo(expected);
        assertThat(Strftime.format("%-d/%-m %-H", t))
                .isEqualTo(t.getDayOfMonth() + "/" + t.getMonthValue() + " " + t.getHour());
        assertThat(Strftime.format("%u %V %G", t)).isEqualTo(t.getDayOfWeek().getValue() + " "
                + "%02d".formatted(t.get(WeekFields.ISO.weekOfWeekBasedYear())) + " " + t.get(WeekFields.ISO.weekBasedYear()));
    }

    @Example
    void shouldMatchPythonForWeekNumbersAndCLocaleComposites() {
        // Values from Python: datetime(2026, 1, 4, 9, 5, 3).strftime(...) (a Sunday) and (2024, 12, 31, 23, 59, 59).
        var sunday = ZonedDateTime.of(2026, 1, 4, 9, 5, 3, 0, ZoneOffset.UTC);
        assertThat(Strftime.format("%U %W %w %c %x %X %D %F %T %R %e", sunday))
                .isEqualTo("01 00 0 Sun Jan  4 09:05:03 2026 01/04/26 09:05:03 01/04/26 2026-01-04 09:05:03 09:05  4");
        var newYearsEve = ZonedDateTime.of(2024, 12, 31, 23, 59, 59, 0, ZoneOffset.UTC);
        assertThat(Strftime.format("%U %W %j %I%p %z %%", newYearsEve)).isEqualTo("52 53 366 11PM +0000 %");
    }

    @Example
    void shouldRejectUnknownDirectivesAndALoneTrailingPercent() {
        var t = ZonedDateTime.of(2026, 1, 4, 9, 5, 3, 0, ZoneOffset.UTC);
        assertThatThrownBy(() -> Strftime.format("%d %Q", t)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("'%Q'");
        assertThatThrownBy(() -> Strftime.format("100%", t)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("lone '%'");
    }
}
