package aether.scheduler.actor;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;

/** Test systems serialize every message they pass (as if it crossed nodes), so an unserializable message fails. */
public final class StrictPekko {
    private StrictPekko() {}

    public static Config config() {
        return ConfigFactory.parseString("""
                pekko.actor.serialize-messages = on
                pekko.actor.serialize-creators = off
                pekko.loglevel = WARNING
                pekko.loggers = ["org.apache.pekko.event.slf4j.Slf4jLogger"]
                pekko.logging-filter = "org.apache.pekko.event.slf4j.Slf4jLoggingFilter"
                """).withFallback(ConfigFactory.load());
    }
}
