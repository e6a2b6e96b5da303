package aether.llm.tokenizer;

import java.util.Arrays;

/**
 * An open-addressing hash map from byte sequences to dense int ids, looked up by a slice of a byte array so the
 * encoders never build a {@code String} per candidate piece. Keys are held by reference (callers must not modify them).
 * Building is single-threaded; lookups are thread-safe once built.
 */
final class ByteSequenceIndex {

    private byte[][] keys;
    private int[] ids;
    /** Slot to key number + 1; 0 marks an empty slot. */
    private int[] slots;
    private int size;

    ByteSequenceIndex(int expected) {
        keys = new byte[Math.max(16, expected)][];
        ids = new int[keys.length];
        slots = new int[tableSize(keys.length)];
    }

    private static int tableSize(int n) {
        return Integer.highestOneBit(Math.max(16, n) * 2 - 1) << 1;
    }

    int size() {
        return size;
    }

    /** Adds {@code key → id} if the key is absent; returns the id now mapped to the key. */
    int putIfAbsent(byte[] key, int id) {
        int existing = get(key, 0, key.length);
        if (existing >= 0) {
            return existing;
        }
        if (size == keys.length) {
            keys = Arrays.copyOf(keys, size * 2);
            ids = Arrays.copyOf(ids, size * 2);
        }
        if ((size + 1) * 2 > slots.length) {
            rehash(slots.length * 2);
        }
        keys[size] = key;
        ids[size] = id;
        insert(size);
        size++;
        return id;
    }

    private void rehash(int newLength) {
        slots = new int[newLength];
        for (int i = 0; i < size; i++) {
            insert(i);
        }
    }

    private void insert(int keyNumber) {
        byte[] key = keys[keyNumber];
        int mask = slots.length - 1;
        int slot = hash(key, 0, key.length) & mask;
        while (slots[slot] != 0) {
            slot = (slot + 1) & mask;
        }
        slots[slot] = keyNumber + 1;
    }

    /** The id of {@code bytes[from, from + length)}, or -1. */
    int get(byte[] bytes, int from, int length) {
        int mask = slots.length - 1;
        int slot = hash(bytes, from, length) & mask;
        while (true) {
            int entry = slots[slot];
            if (entry == 0) {
                return -1;
            }
            byte[] key = keys[entry - 1];
            if (key.length == length && Arrays.equals(key, 0, length, bytes, from, from + length)) {
                return ids[entry - 1];
            }
            slot = (slot + 1) & mask;
        }
    }

    private static int hash(byte[] bytes, int from, int length) {
        int h = 0x811C9DC5 ^ length;
        for (int i = from, end = from + length; i < end; i++) {
            h = (h ^ bytes[i]) * 0x01000193;
        }
        return h ^ (h >>> 15) ^ (h >>> 7);
    }
}
