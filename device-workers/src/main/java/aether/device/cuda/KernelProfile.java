package aether.device.cuda;

import static aether.device.cuda.CudaDriver.check;
import static jcuda.driver.JCudaDriver.cuEventCreate;
import static jcuda.driver.JCudaDriver.cuEventDestroy;
import static jcuda.driver.JCudaDriver.cuEventElapsedTime;
import static jcuda.driver.JCudaDriver.cuEventRecord;
import static jcuda.driver.JCudaDriver.cuEventSynchronize;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import jcuda.driver.CUevent;
import jcuda.driver.CUstream;

/**
 * GPU time per kernel of eagerly launched work: while a profile is open on a {@link CudaContext}
 * ({@link CudaContext#profiled}), every launch outside a stream capture is bracketed by two events, and
 * {@link #report()} sums the time between each pair by kernel name. It answers "where does a decode step's time go"
 * without nsys (the GPU machine has only the driver). Launched eagerly, kernels also pay the host's launch latency
 * between them, which a graph replay does not: the report gives the kernels' own time, and the caller compares the
 * sum with a graph replay's step time to see the gaps.
 */
public final class KernelProfile implements AutoCloseable {

    /** One kernel's share: launches, summed GPU time. */
    public record KernelTime(String kernel, int calls, double totalMillis) {}

    private record Pending(String kernel, CUevent start, CUevent end) {}

    private final CUstream stream;
    private final List<Pending> pending = new ArrayList<>();
    private final List<CUevent> spare = new ArrayList<>();
    private final Map<String, double[]> totals = new LinkedHashMap<>();  // kernel -> {calls, ms}
    private int passes;
    private double spanMillis;  // first kernel's start to last kernel's end, summed over passes

    KernelProfile(CUstream stream) {
        this.stream = stream;
    }

    void before(String kernel) {
        CUevent start = event();
        check(cuEventRecord(start, stream), "cuEventRecord");
        pending.add(new Pending(kernel, start, null));
    }

    void after() {
        Pending p = pending.removeLast();
        CUevent end = event();
        check(cuEventRecord(end, stream), "cuEventRecord");
        pending.add(new Pending(p.kernel(), p.start(), end));
    }

    /** Marks the end of one profiled pass (a decode step), so the report can give time per pass. */
    void endPass() {
        passes++;
        if (!pending.isEmpty()) {
            check(cuEventSynchronize(pending.getLast().end()), "cuEventSynchronize");
            float[] ms = new float[1];
            check(cuEventElapsedTime(ms, pending.getFirst().start(), pending.getLast().end()), "cuEventElapsedTime");
            spanMillis += ms[0];
        }
        collect();
    }

    /** Kernels by summed time, largest first. */
    public List<KernelTime> report() {
        collect();
        return totals.entrySet().stream()
                .map(e -> new KernelTime(e.getKey(), (int) e.getValue()[0], e.getValue()[1]))
                .sorted(Comparator.comparingDouble(KernelTime::totalMillis).reversed())
                .toList();
    }

    /** A markdown table of {@link #report()}: calls, µs per pass, µs per call and share per kernel. */
    public String table(String title) {
        List<KernelTime> r = report();
        double sum = r.stream().mapToDouble(KernelTime::totalMillis).sum();
        int p = Math.max(1, passes);
        StringBuilder s = new StringBuilder();
        s.append(String.format("%s: kernel GPU time over %d passes, %.1f us per pass in kernels, %.1f us first start "
                + "to last end (kernels back to back with a timing event between each)%n", title, p, sum * 1000 / p,
                spanMillis * 1000 / p));
        s.append(String.format("| %-28s | %7s | %10s | %9s | %6s |%n", "kernel", "calls/p", "us/pass", "us/call",
                "share"));
        s.append("|------------------------------|---------|------------|-----------|--------|\n");
        for (KernelTime k : r) {
            s.append(String.format("| %-28s | %7.1f | %10.1f | %9.2f | %5.1f%% |%n", k.kernel(),
                    k.calls() / (double) p, k.totalMillis() * 1000 / p, k.totalMillis() * 1000 / k.calls(),
                    100 * k.totalMillis() / sum));
        }
        return s.toString();
    }

    private void collect() {
        if (pending.isEmpty()) {
            return;
        }
        check(cuEventSynchronize(pending.getLast().end()), "cuEventSynchronize");
        float[] ms = new float[1];
        for (Pending p : pending) {
            check(cuEventElapsedTime(ms, p.start(), p.end()), "cuEventElapsedTime(" + p.kernel() + ")");
            double[] t = totals.computeIfAbsent(p.kernel(), k -> new double[2]);
            t[0]++;
            t[1] += ms[0];
            spare.add(p.start());
            spare.add(p.end());
        }
        pending.clear();
    }

    private CUevent event() {
        if (!spare.isEmpty()) {
            return spare.removeLast();
        }
        CUevent e = new CUevent();
        check(cuEventCreate(e, 0), "cuEventCreate");
        return e;
    }

    /** Destroys the events. */
    @Override
    public void close() {
        collect();
        spare.forEach(e -> cuEventDestroy(e));
        spare.clear();
    }
}
