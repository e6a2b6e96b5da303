package aether.llm.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.lang.foreign.Arena;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

class ProcessMemoryTest {

    @Test
    void shouldParseTheKilobyteFieldsOfProcStatus() {
        String status = """
                Name:\tjava
                VmPeak:\t 9000000 kB
                VmHWM:\t  812345 kB
                VmRSS:\t  700001 kB
                RssAnon:\t  500000 kB
                RssFile:\t  199001 kB
                RssShmem:\t    1000 kB
                Threads:\t31
                """;
        assertThat(ProcessMemory.parse(status)).contains(
                new ProcessMemory(700001L * 1024, 812345L * 1024, 500000L * 1024, 199001L * 1024));
    }

    @Test
    void shouldBeEmptyWhenAFieldIsMissing() {
        assertThat(ProcessMemory.parse("VmRSS:\t 1 kB\nVmHWM:\t 2 kB\nRssAnon:\t 1 kB\n")).isEmpty();
    }

    @Test
    void shouldSeeThisProcessGrowWhenItTouchesMemory() {
        assumeTrue(Files.isReadable(Path.of("/proc/self/status")), "no /proc (not Linux)");
        long before = ProcessMemory.read().orElseThrow().anon();
        try (Arena arena = Arena.ofConfined()) {
            arena.allocate(64 << 20);   // fresh pages from the OS, zeroed (touched) by the allocation
            ProcessMemory after = ProcessMemory.read().orElseThrow();
            assertThat(after.peakRss()).isGreaterThanOrEqualTo(after.rss());
            // other threads may free a little meanwhile (GC); 64 MiB of new pages must show
            assertThat(after.anon() - before).isGreaterThan(48L << 20);
        }
    }
}
