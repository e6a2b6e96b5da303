package aether.cluster;

import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * An Aether node in a separate JVM: {@code AetherMain node ...} on this JVM's java binary, class path and product
 * flags, as {@code ./aether node} runs it. Its output goes to a temp file. {@link #close} kills it if it still runs
 * and deletes its media driver directory if a kill left it behind.
 */
final class NodeProcess implements AutoCloseable {

    private static final Pattern READY = Pattern.compile(
            "aether node up: (\\S+) .*aeron-dir=(\\S+) udp=(\\S+)");

    private final Process process;
    private final Path log;
    private final Path aeronDir;
    private String nodeId;

    private NodeProcess(Process process, Path log, Path aeronDir) {
        this.process = process;
        this.log = log;
        this.aeronDir = aeronDir;
    }

    /** Starts {@code aether node} with {@code args}, a fresh media driver directory and {@code -D} settings. */
    static NodeProcess start(List<String> systemProperties, String... args) throws IOException {
        Path aeronDir = Path.of(Files.isDirectory(Path.of("/dev/shm")) ? "/dev/shm" : System.getProperty("java.io.tmpdir"))
                .resolve("aether-it-" + System.nanoTime());
        List<String> command = new ArrayList<>();
        command.add(ProcessHandle.current().info().command().orElseThrow(
                () -> new IllegalStateException("cannot tell which java binary runs this JVM")));
        for (String flag : ManagementFactory.getRuntimeMXBean().getInputArguments()) {
            if (flag.startsWith("--add-") || flag.startsWith("--enable-native-access")
                    || flag.startsWith("--sun-misc") || flag.startsWith("-Xss")) {
                command.add(flag);     // the product's flags (surefire argLine) travel; agents and debuggers do not
            }
        }
        command.addAll(List.of("-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
                "-Daether.exchange.aeron-dir=" + aeronDir));
        command.addAll(systemProperties);
        command.addAll(List.of("-cp", System.getProperty("java.class.path"), "aether.cluster.cli.AetherMain", "node"));
        command.addAll(List.of(args));
        Path log = Files.createTempFile("aether-node-", ".log");
        Process process = new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(log.toFile()).start();
        return new NodeProcess(process, log, aeronDir);
    }

    /** Waits for the ready line; returns the node id ({@code pekko://aether@host:port}). */
    String awaitReady(Duration limit) throws InterruptedException {
        long deadline = System.nanoTime() + limit.toNanos();
        while (System.nanoTime() < deadline) {
            Matcher m = READY.matcher(output());
            if (m.find()) {
                nodeId = m.group(1);
                return nodeId;
            }
            if (!process.isAlive()) {
                throw new IllegalStateException("node exited with %d before it was up; it said:%n%s"
                        .formatted(process.exitValue(), output()));
            }
            Thread.sleep(20);
        }
        throw new IllegalStateException("node not up within %s; it said:%n%s".formatted(limit, output()));
    }

    String nodeId() {
        return nodeId;
    }

    Path aeronDir() {
        return aeronDir;
    }

    long pid() {
        return process.pid();
    }

    boolean isAlive() {
        return process.isAlive();
    }

    /** SIGTERM, as an operator stops a node; the exit code, or -1 if it still runs after {@code limit}. */
    int terminate(Duration limit) throws InterruptedException {
        process.destroy();
        return process.waitFor(limit.toMillis(), TimeUnit.MILLISECONDS) ? process.exitValue() : -1;
    }

    /** SIGKILL: the node dies without any shutdown. */
    void kill() throws InterruptedException {
        process.destroyForcibly();
        process.waitFor(10, TimeUnit.SECONDS);
    }

    String output() {
        try {
            return Files.readString(log);
        } catch (IOException e) {
            return "(no output: " + e + ")";
        }
    }

    @Override
    public void close() throws InterruptedException, IOException {
        if (process.isAlive()) {
            process.destroyForcibly();
            process.waitFor(10, TimeUnit.SECONDS);
        }
        Files.deleteIfExists(log);
        if (Files.isDirectory(aeronDir)) {     // a killed node cannot delete its own directory
            try (var files = Files.walk(aeronDir)) {
                files.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
            }
        }
    }
}
