package aether.scheduler.compile;

import aether.scheduler.fusion.FusionPlan;
import aether.scheduler.fusion.FusionPlanner;

/**
 * The front door: passes, then fusion planning, then arena planning, giving a {@link CompiledGraph}. {@link
 * #standard()} runs {@link PassManager#standard()} and the CPU cost model; {@link #unfused()} runs the same passes and
 * executes every op alone (the baseline for fusion benchmarks and equivalence tests).
 */
public final class Compiler {

    private final PassManager passes;
    private final FusionPlanner planner;

    /** @param planner the fusion planner, or null to run every op as its own step */
    public Compiler(PassManager passes, FusionPlanner planner) {
        this.passes = passes;
        this.planner = planner;
    }

    public static Compiler standard() {
        return new Compiler(PassManager.standard(), new FusionPlanner());
    }

    public static Compiler unfused() {
        return new Compiler(PassManager.standard(), null);
    }

    public CompiledGraph compile(Program program) {
        PassManager.Result r = passes.run(program);
        FusionPlan plan = planner == null ? FusionPlan.unfused(r.program().graph()) : planner.plan(r.program().graph());
        return new CompiledGraph(r.program(), r.rewrite(), r.records(), plan);
    }
}
