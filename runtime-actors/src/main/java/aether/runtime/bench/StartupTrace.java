package aether.runtime.bench;

import java.util.Locale;

/**
 * Time stamps of start-up phases on stderr, for finding where the time to the first token goes (issue 5): with
 * {@code -Daether.trace.startup=true} (e.g. {@code AETHER_JAVA_OPTS=-Daether.trace.startup=true ./aether run ...})
 * each {@link #mark} prints the milliseconds since the process started and the process's CPU time so far (all
 * threads, the JIT compilers' included), then what was reached and on which thread. The start is the launcher's
 * clock reading ({@code -Daether.launch.epochMicros}, passed by {@code ./aether}); without it, the JVM's start.
 * Off (the default), a mark costs one test of a constant.
 */
public final class StartupTrace {
    private static final boolean ON = Boolean.getBoolean("aether.trace.startup");
    private static final long START_MILLIS = ON ? startMillis() : 0;

    private StartupTrace() {}

    /** Whether marks print. */
    public static boolean on() {
        return ON;
    }

    /** Prints {@code what} with the time since the start and the CPU time so far, when tracing is on. */
    public static void mark(String what) {
        if (!ON) {
            return;
        }
        long cpu = ProcessHandle.current().info().totalCpuDuration().map(java.time.Duration::toMillis).orElse(-1L);
        System.err.printf(Locale.ROOT, "[startup] %6d ms  cpu %6d ms  %s  (%s)%n",
                System.currentTimeMillis() - START_MILLIS, cpu, what, Thread.currentThread().getName());
    }

    private static long startMillis() {
        String launch = System.getProperty("aether.launch.epochMicros", "");
        try {
            return Long.parseLong(launch.trim()) / 1000;
        } catch (NumberFormatException e) {
            return java.lang.management.ManagementFactory.getRuntimeMXBean().getStartTime();
        }
    }
}
