package aether.cluster.node;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigException;
import com.typesafe.config.ConfigFactory;
import com.typesafe.config.ConfigParseOptions;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

/**
 * Loads a node's configuration. Layers, strongest first: {@code overrides} (command-line options), {@code -D} system
 * properties, {@code CONFIG_FORCE_*} environment variables, the optional file, the Pekko wiring of a node
 * ({@code aether/cluster/node-pekko.conf}), then every {@code reference.conf} (whose {@code ${?AETHER_*}} entries read
 * the environment too). Substitutions resolve last, so {@code --host} also moves Artery's canonical host name.
 */
public final class NodeConfig {

    private NodeConfig() {}

    /**
     * @param overrides settings by path ({@code "aether.node.port" -> 0}); lists as {@link java.util.List}
     * @param file      a HOCON file, or {@code null}
     * @throws IllegalArgumentException if the file is missing or malformed (the message names it)
     */
    public static Config load(Map<String, ?> overrides, Path file) {
        Config fromFile = ConfigFactory.empty();
        if (file != null) {
            if (!Files.isRegularFile(file)) {
                throw new IllegalArgumentException("config file %s: no such file".formatted(file));
            }
            try {
                fromFile = ConfigFactory.parseFile(file.toFile(), ConfigParseOptions.defaults().setAllowMissing(false));
            } catch (ConfigException e) {
                throw new IllegalArgumentException("config file %s: %s".formatted(file, e.getMessage()), e);
            }
        }
        ClassLoader loader = NodeConfig.class.getClassLoader();
        Config config = ConfigFactory.parseMap(overrides, "command line")
                .withFallback(ConfigFactory.systemProperties())
                .withFallback(ConfigFactory.systemEnvironmentOverrides())
                .withFallback(fromFile)
                .withFallback(ConfigFactory.parseResources(loader, "aether/cluster/node-pekko.conf"))
                .withFallback(ConfigFactory.defaultReferenceUnresolved(loader));
        try {
            return config.resolve();
        } catch (ConfigException e) {
            throw new IllegalArgumentException("node configuration: " + e.getMessage(), e);
        }
    }
}
