package aether.scheduler.memory;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;

/**
 * Packs lifetimes into one arena: first-fit decreasing. Buffers are placed largest first (ties: earlier first step, then
 * node id); each goes to the lowest aligned offset where it overlaps no already-placed buffer whose lifetime overlaps
 * its own. Offsets are multiples of {@link #ALIGNMENT} (64 bytes: a cache line, and enough for any vector load).
 */
public final class ArenaPlanner {

    public static final int ALIGNMENT = 64;

    private ArenaPlanner() {}

    public static ArenaPlan plan(Liveness liveness, int nodeCount) {
        List<Lifetime> order = new ArrayList<>(liveness.lifetimes());
        order.sort(Comparator.comparingLong(Lifetime::bytes).reversed().thenComparingInt(Lifetime::first)
                .thenComparingInt(Lifetime::node));
        long[] offsets = new long[nodeCount];
        long[] sizes = new long[nodeCount];
        Arrays.fill(offsets, -1);
        List<Lifetime> placed = new ArrayList<>();
        List<long[]> placedRanges = new ArrayList<>();
        long peak = 0;
        long total = 0;
        for (Lifetime l : order) {
            List<long[]> busy = new ArrayList<>();
            for (int i = 0; i < placed.size(); i++) {
                if (placed.get(i).overlaps(l)) {
                    busy.add(placedRanges.get(i));
                }
            }
            busy.sort(Comparator.comparingLong(r -> r[0]));
            long at = 0;
            for (long[] r : busy) {
                if (at + l.bytes() <= r[0]) {
                    break;
                }
                at = Math.max(at, align(r[1]));
            }
            offsets[l.node()] = at;
            sizes[l.node()] = l.bytes();
            placed.add(l);
            placedRanges.add(new long[] {at, at + l.bytes()});
            peak = Math.max(peak, at + l.bytes());
            total += l.bytes();
        }
        for (int id = 0; id < nodeCount; id++) {
            int s = liveness.storage(id);
            if (s != id && offsets[s] >= 0) {
                offsets[id] = offsets[s];
                sizes[id] = sizes[s];
            }
        }
        return new ArenaPlan(offsets, sizes, liveness.lifetimes(), peak, total, ALIGNMENT);
    }

    static long align(long v) {
        return (v + ALIGNMENT - 1) & -(long) ALIGNMENT;
    }
}
