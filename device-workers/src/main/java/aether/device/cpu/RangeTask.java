package aether.device.cpu;

/**
 * One op's data-parallel body: processes the half-open index range {@code [from, to)}. {@link KernelPool} calls it
 * once per participating thread with disjoint ranges, concurrently; an implementation must write only the outputs of
 * its own range. Implementations are reusable objects (not capturing lambdas), so a dispatch allocates nothing.
 */
@FunctionalInterface
public interface RangeTask {
    /**
     * @param from   first index, inclusive
     * @param to     last index, exclusive; {@code from < to}
     * @param thread index of the participating thread, {@code 0} is the caller, unique within one dispatch
     */
    void run(int from, int to, int thread);
}
