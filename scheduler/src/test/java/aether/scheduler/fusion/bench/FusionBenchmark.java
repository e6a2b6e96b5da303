package aether.scheduler.fusion.bench;

import aether.runtime.ir.DType;
import aether.runtime.ir.Shape;
import aether.scheduler.compile.CompiledGraph;
import aether.scheduler.compile.Compiler;
import aether.scheduler.compile.Program;
import aether.scheduler.graph.Graph;
import aether.scheduler.graph.Tensor;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * Fused vs unfused compiled execution of the same graphs (same passes, same arena planner; only the fusion plan differs):
 * a 5-op elementwise chain over 1M floats with a broadcast bias, rms_norm × weight over [rows, 4096], and a
 * matmul + bias + gelu layer. Setup checks that both plans give bit-identical results.
 *
 * <p>Smoke run: {@code ./mvnw -q -B -pl scheduler -am test-compile} then run {@code org.openjdk.jmh.Main FusionBenchmark
 * -f 1 -wi 1 -i 1 -w 1s -r 1s} on the scheduler test classpath.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(value = 1, jvmArgsAppend = {"--add-modules=jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED"})
public class FusionBenchmark {

    @Param({"chain5", "rmsNormWeight", "linearBiasGelu"})
    public String graph;

    @Param({"fused", "unfused"})
    public String plan;

    private CompiledGraph compiled;

    @Setup(Level.Trial)
    public void setup() {
        Program p = program(graph);
        compiled = (plan.equals("fused") ? Compiler.standard() : Compiler.unfused()).compile(p);
        bindRandom(compiled, p, 1);
        try (CompiledGraph other = (plan.equals("fused") ? Compiler.unfused() : Compiler.standard()).compile(p)) {
            bindRandom(other, p, 1);
            compiled.run();
            other.run();
            if (!Arrays.equals(compiled.outputFloats(0), other.outputFloats(0))) {
                throw new IllegalStateException(graph + ": fused and unfused results differ");
            }
        }
    }

    static Program program(String name) {
        Graph g = new Graph();
        Random rnd = new Random(7);
        return switch (name) {
            case "chain5" -> {
                Tensor x = g.input("x", Shape.of(1024, 1024), DType.F32);
                Tensor b = g.input("b", Shape.of(1024), DType.F32);
                Tensor y = x.add(b).scale(0.5).relu().mul(x).sub(b);
                yield Program.from(g, List.of(), y).program();
            }
            case "rmsNormWeight" -> {
                Tensor x = g.input("x", Shape.of(64, 4096), DType.F32);
                Tensor w = g.tensor(randoms(4096, rnd), Shape.of(4096));
                yield Program.from(g, List.of(w), x.rmsNorm(w, 1e-5)).program();
            }
            case "linearBiasGelu" -> {
                Tensor x = g.input("x", Shape.of(16, 256), DType.F32);
                Tensor w = g.tensor(randoms(512 * 256, rnd), Shape.of(512, 256));
                Tensor bias = g.tensor(randoms(512, rnd), Shape.of(512));
                yield Program.from(g, List.of(w, bias), x.linear(w, bias).gelu()).program();
            }
            default -> throw new IllegalArgumentException("unknown benchmark graph " + name);
        };
    }

    private static float[] randoms(int n, Random rnd) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) rnd.nextGaussian();
        }
        return v;
    }

    private static void bindRandom(CompiledGraph cg, Program p, long seed) {
        Random rnd = new Random(seed);
        for (int id : p.runtimeInputs()) {
            cg.set(id, randoms(p.graph().node(id).shape().sizeAsInt(), rnd));
        }
    }

    @Benchmark
    public MemorySegment run() {
        compiled.run();
        return compiled.output(0);
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        compiled.close();
    }
}
