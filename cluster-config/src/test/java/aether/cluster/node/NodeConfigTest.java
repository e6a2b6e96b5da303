package aether.cluster.node;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import aether.runtime.transfer.Transport;
import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class NodeConfigTest {

    @TempDir
    Path dir;

    @Test
    void shouldStartFromTheReferenceDefaults() {
        Config config = NodeConfig.load(Map.of(), null);
        NodeSettings s = NodeSettings.from(config);
        assertThat(s.systemName()).isEqualTo("aether");
        assertThat(s.host()).isEqualTo(System.getenv().getOrDefault("AETHER_HOST", "127.0.0.1"));
        assertThat(s.seeds()).isEmpty();
        assertThat(s.roles()).containsExactly("worker");
        assertThat(s.transport()).isEqualTo(Transport.AUTO);
        assertThat(s.cpuThreads()).as("0 means every processor").isEqualTo(Runtime.getRuntime().availableProcessors());
        assertThat(s.udpHost()).as("the UDP inbox defaults to the node's host").isEqualTo(s.host());
        assertThat(s.aeronDir()).isNull();
        assertThat(s.transferTimeout()).isEqualTo(Duration.ofSeconds(60));
        assertThat(config.getString("pekko.actor.provider")).isEqualTo("cluster");
        assertThat(config.getString("pekko.remote.artery.transport")).isEqualTo("tcp");
        assertThat(config.getString("pekko.actor.serialization-bindings.\"aether.runtime.protocol.CborSerializable\""))
                .isEqualTo("jackson-cbor");
    }

    @Test
    void shouldLetTheCommandLineOverrideTheFileAndTheFileOverrideTheDefaults() throws Exception {
        Path file = dir.resolve("node.conf");
        Files.writeString(file, """
                aether.node { host = "10.1.2.3", port = 2600, seeds = ["10.1.2.4:2600"], cpu-threads = 3 }
                aether.exchange.transport = udp
                pekko.cluster.split-brain-resolver.active-strategy = keep-majority
                """);
        Config config = NodeConfig.load(Map.of("aether.node.port", 0, "aether.node.seeds", List.of("a:1", "[::1]:2")), file);
        NodeSettings s = NodeSettings.from(config);
        assertThat(s.host()).isEqualTo("10.1.2.3");
        assertThat(s.port()).isZero();
        assertThat(s.seeds()).containsExactly(new NodeSettings.Seed("a", 1), new NodeSettings.Seed("::1", 2));
        assertThat(s.cpuThreads()).isEqualTo(3);
        assertThat(s.transport()).isEqualTo(Transport.UDP);
        assertThat(config.getString("pekko.remote.artery.canonical.hostname")).as("follows aether.node.host")
                .isEqualTo("10.1.2.3");
        assertThat(config.getInt("pekko.remote.artery.canonical.port")).isZero();
        assertThat(config.getString("pekko.cluster.split-brain-resolver.active-strategy")).isEqualTo("keep-majority");
    }

    @Test
    void shouldLetSystemPropertiesOverrideTheFile() throws Exception {
        Path file = dir.resolve("node.conf");
        Files.writeString(file, "aether.node.cpu-workers = 4\naether.exchange.udp-port = 4000\n");
        System.setProperty("aether.exchange.udp-port", "4001");
        ConfigFactory.invalidateCaches();
        try {
            NodeSettings s = NodeSettings.from(NodeConfig.load(Map.of(), file));
            assertThat(s.udpPort()).isEqualTo(4001);
            assertThat(s.cpuWorkers()).isEqualTo(4);
        } finally {
            System.clearProperty("aether.exchange.udp-port");
            ConfigFactory.invalidateCaches();
        }
    }

    @Test
    void shouldRunGpuWorkersWhereThereAreGpusUnlessToldOtherwise() {
        assertThat(NodeSettings.from(NodeConfig.load(Map.of(), null)).gpuWorkers()).isEqualTo(
                System.getenv("AETHER_GPU_WORKERS") == null ? aether.device.cuda.GpuWorkers.AUTO
                        : aether.device.cuda.GpuWorkers.parse("env", System.getenv("AETHER_GPU_WORKERS")));
        assertThat(NodeSettings.from(NodeConfig.load(Map.of("aether.node.gpu-workers", "off"), null)).gpuWorkers())
                .isEqualTo(aether.device.cuda.GpuWorkers.OFF);
        assertThatThrownBy(() -> NodeSettings.from(NodeConfig.load(Map.of("aether.node.gpu-workers", "2"), null)))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("aether.node.gpu-workers: '2' (expected: auto, on or off)");
    }

    @Test
    void shouldNameTheBadSetting() {
        assertThatThrownBy(() -> NodeSettings.from(NodeConfig.load(Map.of("aether.node.port", 70000), null)))
                .hasMessage("aether.node.port: 70000 (expected: 0..65535)");
        assertThatThrownBy(() -> NodeSettings.from(NodeConfig.load(Map.of("aether.exchange.transport", "tcp"), null)))
                .hasMessage("aether.exchange.transport: 'tcp' (expected: auto, ipc or udp)");
        assertThatThrownBy(() -> NodeSettings.from(NodeConfig.load(Map.of("aether.node.seeds", List.of("host")), null)))
                .hasMessage("seed 'host' (expected: host:port)");
        assertThatThrownBy(() -> NodeSettings.from(NodeConfig.load(Map.of("aether.node.seeds", List.of("h:x")), null)))
                .hasMessage("seed 'h:x': port 'x' is not a number (expected: host:port)");
        assertThatThrownBy(() -> NodeSettings.from(NodeConfig.load(Map.of("aether.node.cpu-threads", -1), null)))
                .hasMessage("aether.node.cpu-threads: -1 (expected: 0 for every processor, or 1+)");
        assertThatThrownBy(() -> NodeSettings.from(NodeConfig.load(Map.of("aether.exchange.send-timeout", "soon"), null)))
                .hasMessageStartingWith("node configuration: ").hasMessageContaining("send-timeout");
        Path missing = dir.resolve("missing.conf");
        assertThatThrownBy(() -> NodeConfig.load(Map.of(), missing)).hasMessage("config file " + missing + ": no such file");
    }

    @Test
    void shouldRejectAMalformedFileNamingIt() throws Exception {
        Path file = dir.resolve("bad.conf");
        Files.writeString(file, "aether.node { port = \n");
        assertThatThrownBy(() -> NodeConfig.load(Map.of(), file)).hasMessageStartingWith("config file " + file + ": ");
    }
}
