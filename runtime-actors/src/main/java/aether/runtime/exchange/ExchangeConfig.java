package aether.runtime.exchange;

import java.time.Duration;
import java.util.Objects;

/**
 * Settings of an {@link ExchangeNode}.
 *
 * @param aeronDirectory     the media driver's directory; {@code null} for a fresh, unique one under {@code /dev/shm}
 *                           (or the temp dir where there is none). Ignored by {@link ExchangeNode#connect}.
 * @param sendTimeout        how long a send may wait for a subscriber to connect, or stay back-pressured without
 *                           progress, before it fails
 * @param transferTimeout    how long an incoming transfer that nobody expects yet may go without a frame before it
 *                           fails (an expected one uses the deadline given to {@code expect})
 * @param unclaimedRetention how long a transfer that completed (or failed) before anybody expected it is kept
 * @param framesPerTurn      frames one send writes before the next in-flight send gets a turn (interleaving keeps a
 *                           small tensor from waiting behind a huge one)
 * @param maxIdle            the longest the agent thread parks when there is no work (latency vs. CPU when idle)
 */
public record ExchangeConfig(String aeronDirectory, Duration sendTimeout, Duration transferTimeout,
        Duration unclaimedRetention, int framesPerTurn, Duration maxIdle) {

    public ExchangeConfig {
        positive("sendTimeout", sendTimeout);
        positive("transferTimeout", transferTimeout);
        positive("unclaimedRetention", unclaimedRetention);
        positive("maxIdle", maxIdle);
        if (framesPerTurn < 1) {
            throw new IllegalArgumentException("framesPerTurn: %d (expected: 1+)".formatted(framesPerTurn));
        }
    }

    /** 10 s send timeout, 30 s transfer timeout, 60 s retention, 16 frames per turn, 1 ms maximum idle. */
    public static ExchangeConfig defaults() {
        return new ExchangeConfig(null, Duration.ofSeconds(10), Duration.ofSeconds(30), Duration.ofSeconds(60), 16,
                Duration.ofMillis(1));
    }

    public ExchangeConfig withAeronDirectory(String dir) {
        return new ExchangeConfig(dir, sendTimeout, transferTimeout, unclaimedRetention, framesPerTurn, maxIdle);
    }

    public ExchangeConfig withSendTimeout(Duration timeout) {
        return new ExchangeConfig(aeronDirectory, timeout, transferTimeout, unclaimedRetention, framesPerTurn, maxIdle);
    }

    public ExchangeConfig withTransferTimeout(Duration timeout) {
        return new ExchangeConfig(aeronDirectory, sendTimeout, timeout, unclaimedRetention, framesPerTurn, maxIdle);
    }

    public ExchangeConfig withMaxIdle(Duration idle) {
        return new ExchangeConfig(aeronDirectory, sendTimeout, transferTimeout, unclaimedRetention, framesPerTurn, idle);
    }

    private static void positive(String name, Duration d) {
        Objects.requireNonNull(d, name);
        if (d.isNegative() || d.isZero()) {
            throw new IllegalArgumentException("%s: %s (expected: positive)".formatted(name, d));
        }
    }
}
