package aether.scheduler.compile;

/**
 * One compiler pass: a pure function from a program to an equivalent program. Equivalent means every output of the new
 * program has the same value as the matching output of the old one, for every binding of the run-time inputs (bit for
 * bit under the reference executor unless the pass documents otherwise). Outputs keep their order.
 */
public interface Pass {

    /** Short name for dumps and logs. */
    String name();

    Rewrite run(Program program);
}
