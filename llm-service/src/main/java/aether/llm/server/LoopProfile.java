package aether.llm.server;

/**
 * Where the engine thread's time goes ({@code -Daether.serve.profile=true}; printed to stderr when the engine stops):
 * per decode step the model's step call and everything else the step does (sampling, stop strings, detokenizing,
 * handing chunks to the HTTP streams), and per loop iteration the rest (admission, prompt steps, metrics). For finding
 * the host's share of the inter-token gap on a GPU, where the model step is only part of it. Engine thread only.
 */
final class LoopProfile {

    static final boolean ON = Boolean.getBoolean("aether.serve.profile");

    private long steps;
    private long entries;
    private long stepNs;
    private long modelNs;
    private long iterations;
    private long iterationNs;

    void model(long ns) {
        modelNs += ns;
    }

    void step(long ns, int batchEntries) {
        steps++;
        entries += batchEntries;
        stepNs += ns;
    }

    void iteration(long ns) {
        iterations++;
        iterationNs += ns;
    }

    String report() {
        if (steps == 0) {
            return "engine loop: no decode steps\n";
        }
        return String.format("engine loop: %d steps (%.1f entries each), per step %.2f ms in the model's step, %.2f ms "
                + "in the rest of the step (sampling, stop strings, detokenizing, streaming); %.2f ms per busy loop "
                + "iteration (%d)%n", steps, entries / (double) steps, modelNs / 1e6 / steps,
                (stepNs - modelNs) / 1e6 / steps, iterationNs / 1e6 / Math.max(1, iterations), iterations);
    }
}
