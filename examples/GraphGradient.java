import aether.runtime.ir.Shape;
import aether.scheduler.exec.GraphExecutor;
import aether.scheduler.exec.ReferenceExecutor;
import aether.scheduler.graph.Graph;
import aether.scheduler.graph.Tensor;
import java.util.Arrays;

/**
 * Builds a small graph (a linear layer, a softmax and a weighted sum), runs it, and prints the gradient of the result
 * with respect to the input. Run it with {@code scripts/example examples/GraphGradient.java}.
 */
public class GraphGradient {
    public static void main(String[] args) {
        GraphExecutor executor = new ReferenceExecutor();
        Graph g = new Graph();
        Tensor x = g.tensor(new float[] {0.5f, -1.25f, 2f, 0.75f, 1f, -0.5f}, Shape.of(2, 3));
        Tensor w = g.tensor(new float[] {1.5f, -0.5f, 0.25f, 2f, 0.1f, -1f}, Shape.of(3, 2));
        Tensor c = g.tensor(new float[] {1f, 2f, 3f, 4f}, Shape.of(2, 2));
        Tensor y = x.matmul(w).softmax(-1).mul(c).sumAll();   // y = sum(softmax(x·w) * c)

        float[] dx = y.backward().of(x).toFloatArray(executor);
        System.out.println("y     = " + Arrays.toString(y.toFloatArray(executor)));
        System.out.println("dy/dx = " + Arrays.toString(dx));
        System.out.println(g.dump());
    }
}
