package aether.runtime.memory;

import aether.runtime.protocol.Location;

/**
 * One location's soft limit and the bytes its current copies use. Soft: usage may pass the limit while nothing
 * evictable is left (everything pinned, or the last copy of data on host); the registry then evicts as soon as it can.
 * Confined to the registry's thread.
 */
final class Budget {
    private final Location location;
    private long limitBytes;
    private long usedBytes;

    Budget(Location location, long limitBytes) {
        this.location = location;
        setLimit(limitBytes);
    }

    Location location() {
        return location;
    }

    long limitBytes() {
        return limitBytes;
    }

    long usedBytes() {
        return usedBytes;
    }

    /** Bytes above the limit; zero or negative when within it. */
    long excessBytes() {
        return usedBytes - limitBytes;
    }

    void setLimit(long newLimitBytes) {
        assert newLimitBytes >= 0 : location + " limit " + newLimitBytes;
        limitBytes = newLimitBytes;
    }

    void add(long bytes) {
        usedBytes = Math.addExact(usedBytes, bytes);
    }

    void release(long bytes) {
        usedBytes -= bytes;
        assert usedBytes >= 0 : location + " released below zero: " + usedBytes;
    }
}
