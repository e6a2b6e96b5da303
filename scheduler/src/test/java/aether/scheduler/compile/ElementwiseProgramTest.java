package aether.scheduler.compile;

import static org.assertj.core.api.Assertions.assertThat;

import aether.runtime.ir.DType;
import aether.runtime.ir.Op;
import aether.runtime.ir.OpGraph;
import aether.runtime.ir.Shape;
import aether.runtime.ir.TensorType;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** The vector loops against the scalar ones (bit for bit), odd block lengths, special values and broadcast gathers. */
class ElementwiseProgramTest {

    @Test
    void vectorAndScalarLoopsAgreeBitForBit() {
        OpGraph.Builder b = new OpGraph.Builder();
        int x = b.add(new Op.Input("x", TensorType.of(DType.F32, 3, 207)));
        int y = b.add(new Op.Input("y", TensorType.of(DType.F32, 207)));
        int z = b.add(new Op.Input("z", TensorType.of(DType.F32, 3, 1)));
        List<Integer> members = new ArrayList<>();
        int v = b.add(new Op.Binary(Op.BinaryFn.ADD), x, y);
        members.add(v);
        for (Op op : List.of(new Op.Binary(Op.BinaryFn.MUL), new Op.Binary(Op.BinaryFn.SUB),
                new Op.Binary(Op.BinaryFn.DIV))) {
            v = b.add(op, v, members.size() % 2 == 0 ? y : z);
            members.add(v);
        }
        for (Op op : List.of(new Op.Unary(Op.UnaryFn.NEG), new Op.Unary(Op.UnaryFn.RELU), new Op.Scale(0.75),
                new Op.Scale(0.1), new Op.Unary(Op.UnaryFn.SILU), new Op.Unary(Op.UnaryFn.GELU))) {
            v = b.add(op, v);
            members.add(v);
        }
        OpGraph g = b.build(List.of(v));
        Random rnd = new Random(3);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment[] seg = new MemorySegment[g.size()];
            for (int id : List.of(x, y, z)) {
                Shape s = g.node(id).shape();
                seg[id] = arena.allocate(s.size() * 4, 64);
                for (long i = 0; i < s.size(); i++) {
                    float f = switch (rnd.nextInt(12)) {
                        case 0 -> -0.0f;
                        case 1 -> 0.0f;
                        case 2 -> Float.NaN;
                        case 3 -> Float.POSITIVE_INFINITY;
                        case 4 -> Float.MIN_VALUE;
                        default -> (float) rnd.nextGaussian() * 3;
                    };
                    seg[id].setAtIndex(ValueLayout.JAVA_FLOAT, i, f);
                }
            }
            Shape domain = g.node(v).shape();
            for (int block : new int[] {1, 7, 64, 207, 621}) {
                ElementwiseProgram vec = new ElementwiseProgram(g, members, v, domain, block, id -> seg[id], -1, true);
                ElementwiseProgram sca = new ElementwiseProgram(g, members, v, domain, block, id -> seg[id], -1, false);
                for (long start = 0; start < domain.size(); start += block) {
                    int len = (int) Math.min(block, domain.size() - start);
                    float[] a = vec.evaluate(start, len).clone();
                    float[] c = sca.evaluate(start, len);
                    for (int i = 0; i < len; i++) {
                        assertThat(Float.floatToRawIntBits(a[i]) == Float.floatToRawIntBits(c[i])
                                || (Float.isNaN(a[i]) && Float.isNaN(c[i])))
                                .as("block %d position %d: %s vs %s", block, start + i, a[i], c[i]).isTrue();
                    }
                }
            }
        }
    }
}
