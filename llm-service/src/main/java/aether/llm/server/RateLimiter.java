package aether.llm.server;

import java.util.concurrent.ConcurrentHashMap;
import java.util.function.LongSupplier;

/**
 * A token bucket per client key: {@code perMinute} requests a minute on average, bursts of up to {@code perMinute}.
 * Thread-safe.
 */
final class RateLimiter {

    private final double capacity;
    private final double perNano;
    private final LongSupplier clock;
    private final ConcurrentHashMap<String, Bucket> buckets = new ConcurrentHashMap<>();

    RateLimiter(int perMinute, LongSupplier nanoClock) {
        if (perMinute < 1) {
            throw new IllegalArgumentException("rate limit " + perMinute + "/min (expected 1+)");
        }
        this.capacity = perMinute;
        this.perNano = perMinute / 60e9;
        this.clock = nanoClock;
    }

    /** Takes one request from {@code key}'s bucket; returns 0 when allowed, else the seconds until one is free. */
    long acquire(String key) {
        Bucket b = buckets.computeIfAbsent(key, k -> new Bucket(capacity, clock.getAsLong()));
        synchronized (b) {
            long now = clock.getAsLong();
            b.tokens = Math.min(capacity, b.tokens + (now - b.lastNs) * perNano);
            b.lastNs = now;
            if (b.tokens >= 1) {
                b.tokens -= 1;
                return 0;
            }
            return Math.max(1, (long) Math.ceil((1 - b.tokens) / perNano / 1e9));
        }
    }

    private static final class Bucket {
        double tokens;
        long lastNs;

        Bucket(double tokens, long lastNs) {
            this.tokens = tokens;
            this.lastNs = lastNs;
        }
    }
}
