package aether.scheduler.compile;

import static org.assertj.core.api.Assertions.assertThat;

import aether.runtime.ir.Node;
import aether.runtime.ir.Op;
import aether.scheduler.exec.HostTensor;
import aether.scheduler.exec.ReferenceExecutor;
import aether.scheduler.exec.TensorValue;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

/** Test helpers: random bindings for a program's run-time inputs, evaluation, bit-exact comparison across a rewrite. */
final class Programs {

    private Programs() {}

    /** Random values in [-2, 2) for every run-time floating input (I32 inputs get 0..3). */
    static Map<Integer, TensorValue> randomInputs(Program p, Random rnd) {
        Map<Integer, TensorValue> in = new HashMap<>();
        for (int id : p.runtimeInputs()) {
            Node n = p.graph().node(id);
            int size = n.shape().sizeAsInt();
            if (n.dtype().isInteger()) {
                int[] v = new int[size];
                for (int i = 0; i < size; i++) {
                    v[i] = rnd.nextInt(4);
                }
                in.put(id, HostTensor.ofInts(v, n.shape()));
            } else {
                double[] v = new double[size];
                for (int i = 0; i < size; i++) {
                    v[i] = rnd.nextDouble() * 4 - 2;
                }
                in.put(id, HostTensor.of(v, n.shape(), n.dtype()));
            }
        }
        return in;
    }

    static List<HostTensor> evaluate(Program p, Map<Integer, TensorValue> runtime) {
        Map<Integer, TensorValue> all = new HashMap<>(p.constants());
        all.putAll(runtime);
        return new ReferenceExecutor().executeNow(p.graph(), all);
    }

    /** Runtime inputs of the old program moved to their ids in the rewritten one (dropped inputs are left out). */
    static Map<Integer, TensorValue> remap(Map<Integer, TensorValue> inputs, Rewrite r) {
        Map<Integer, TensorValue> m = new HashMap<>();
        for (Map.Entry<Integer, TensorValue> e : inputs.entrySet()) {
            int to = r.map(e.getKey());
            if (to >= 0) {
                m.put(to, e.getValue());
            }
        }
        return m;
    }

    /** Evaluates before and after on the same random inputs and requires every output bit-identical. */
    static void assertSameResults(Program before, Rewrite after, long seed) {
        Map<Integer, TensorValue> in = randomInputs(before, new Random(seed));
        List<HostTensor> expected = evaluate(before, in);
        List<HostTensor> actual = evaluate(after.program(), remap(in, after));
        assertThat(actual).hasSameSizeAs(expected);
        for (int i = 0; i < expected.size(); i++) {
            assertThat(actual.get(i).type()).isEqualTo(expected.get(i).type());
            assertThat(bits(actual.get(i))).as("output %d bits", i).containsExactly(bits(expected.get(i)));
        }
    }

    static long[] bits(HostTensor t) {
        double[] d = t.toDoubleArray();
        long[] b = new long[d.length];
        for (int i = 0; i < d.length; i++) {
            b[i] = Double.doubleToLongBits(d[i]);
        }
        return b;
    }

    /** Nodes of the program that are not inputs. */
    static long computed(Program p) {
        return p.graph().nodes().stream().filter(n -> !(n.op() instanceof Op.Input)).count();
    }

    /** {@code pass} then dead-code elimination. */
    static Rewrite runThenDce(Pass pass, Program p) {
        Rewrite r = pass.run(p);
        return r.then(new DeadCodeElimination().run(r.program()));
    }
}
