package aether.llm.engine;

/**
 * The free list of a paged KV cache: block ids {@code 0..total-1}, each covering {@code blockPositions} positions of
 * every layer. Allocation and release are O(1) and allocate nothing. Not thread-safe (the engine loop owns it).
 */
final class KvBlockPool {

    private final int[] free;
    private int freeCount;

    KvBlockPool(int blocks) {
        if (blocks < 1) {
            throw new IllegalArgumentException("KV pool of " + blocks + " blocks (expected 1+)");
        }
        this.free = new int[blocks];
        for (int i = 0; i < blocks; i++) {
            free[i] = blocks - 1 - i;   // hand out low ids first
        }
        this.freeCount = blocks;
    }

    int total() {
        return free.length;
    }

    int freeBlocks() {
        return freeCount;
    }

    int used() {
        return free.length - freeCount;
    }

    /** A free block id; the caller checked {@link #freeBlocks()} first. */
    int allocate() {
        if (freeCount == 0) {
            throw new IllegalStateException("KV pool: no free block (the caller must check capacity first)");
        }
        return free[--freeCount];
    }

    void release(int block) {
        if (freeCount == free.length) {
            throw new IllegalStateException("KV pool: block " + block + " released twice");
        }
        free[freeCount++] = block;
    }
}
