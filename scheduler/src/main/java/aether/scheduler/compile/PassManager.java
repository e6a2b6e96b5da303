package aether.scheduler.compile;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * Runs passes in order and records for each the node count before and after and the time it took. {@link #standard()}
 * is the default pipeline: simplify, drop dead code, merge common subexpressions, fold constants, pre-lay-out constant
 * weights, and clean up after each rewriting pass.
 */
public final class PassManager {

    private final List<Pass> passes;

    public PassManager(List<Pass> passes) {
        this.passes = List.copyOf(passes);
    }

    public static PassManager standard() {
        return new PassManager(List.of(new Simplify(), new DeadCodeElimination(), new CommonSubexpressions(),
                new ConstantFolding(), new DeadCodeElimination(), new WeightLayout(), new DeadCodeElimination()));
    }

    public List<Pass> passes() {
        return passes;
    }

    /** What one pass did. */
    public record PassRecord(String pass, int nodesBefore, int nodesAfter, long nanos) {
        @Override
        public String toString() {
            return String.format(Locale.ROOT, "%-22s %5d -> %5d nodes  %8.3f ms", pass, nodesBefore, nodesAfter,
                    nanos / 1e6);
        }
    }

    /** The final program, the composed mapping from the input program's ids, and one record per pass. */
    public record Result(Rewrite rewrite, List<PassRecord> records) {
        public Program program() {
            return rewrite.program();
        }

        /** One line per pass. */
        public String log() {
            StringBuilder sb = new StringBuilder();
            for (PassRecord r : records) {
                sb.append(r).append('\n');
            }
            return sb.toString();
        }
    }

    public Result run(Program program) {
        Rewrite total = Rewrite.identity(program);
        List<PassRecord> records = new ArrayList<>(passes.size());
        for (Pass pass : passes) {
            Program before = total.program();
            long t0 = System.nanoTime();
            Rewrite r = pass.run(before);
            long t1 = System.nanoTime();
            records.add(new PassRecord(pass.name(), before.size(), r.program().size(), t1 - t0));
            total = total.then(r);
        }
        return new Result(total, List.copyOf(records));
    }
}
