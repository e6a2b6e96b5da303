package aether.llm.cli;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;

/**
 * This process's memory as Linux reports it in {@code /proc/self/status}: resident set now ({@code VmRSS}) and its
 * peak ({@code VmHWM}), split into anonymous memory (heap, arenas, repacked weights: {@code RssAnon}) and mapped file
 * pages ({@code RssFile}: the model's pages that have been touched). All in bytes.
 */
record ProcessMemory(long rss, long peakRss, long anon, long file) {

    private static final Path STATUS = Path.of("/proc/self/status");

    /** The figures now; empty where {@code /proc/self/status} does not exist (not Linux) or lacks a field. */
    static Optional<ProcessMemory> read() {
        try {
            return parse(Files.readString(STATUS));
        } catch (IOException | RuntimeException e) {
            return Optional.empty();
        }
    }

    /** Parses the text of a {@code /proc/PID/status} file (values in kB, as the kernel writes them). */
    static Optional<ProcessMemory> parse(String status) {
        long rss = -1;
        long hwm = -1;
        long anon = -1;
        long file = -1;
        for (String line : status.split("\n")) {
            int colon = line.indexOf(':');
            if (colon < 0) {
                continue;
            }
            long v = switch (line.substring(0, colon)) {
                case "VmRSS", "VmHWM", "RssAnon", "RssFile" -> kiloBytes(line.substring(colon + 1));
                default -> -1;
            };
            switch (line.substring(0, colon)) {
                case "VmRSS" -> rss = v;
                case "VmHWM" -> hwm = v;
                case "RssAnon" -> anon = v;
                case "RssFile" -> file = v;
                default -> { }
            }
        }
        if (rss < 0 || hwm < 0 || anon < 0 || file < 0) {
            return Optional.empty();
        }
        return Optional.of(new ProcessMemory(rss, hwm, anon, file));
    }

    private static long kiloBytes(String value) {
        String v = value.strip();
        if (!v.endsWith(" kB")) {
            throw new IllegalArgumentException("expected a value in kB, found '" + v + "'");
        }
        return Long.parseLong(v.substring(0, v.length() - 3).strip()) * 1024;
    }
}
