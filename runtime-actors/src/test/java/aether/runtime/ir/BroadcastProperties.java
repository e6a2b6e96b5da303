package aether.runtime.ir;

import static org.assertj.core.api.Assertions.assertThat;

import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;

/** NumPy broadcasting as shape inference sees it. */
class BroadcastProperties {

    @Provide
    Arbitrary<Shape> shapes() {
        // Small sizes with many 1s, so compatible and incompatible pairs both occur often.
        return Arbitraries.integers().between(1, 4).array(int[].class).ofMinSize(0).ofMaxSize(5).map(Shape::new);
    }

    @Property
    void broadcastIsSymmetric(@ForAll("shapes") Shape a, @ForAll("shapes") Shape b) {
        assertThat(Shape.broadcast(a, b)).isEqualTo(Shape.broadcast(b, a));
    }

    @Property
    void resultHasTheLargerRankAndEachDimensionIsTheNonOneOperandSize(@ForAll("shapes") Shape a,
            @ForAll("shapes") Shape b) {
        Shape r = Shape.broadcast(a, b);
        boolean compatible = true;
        int rank = Math.max(a.rank(), b.rank());
        for (int i = 1; i <= rank; i++) {
            int da = i <= a.rank() ? a.dim(-i) : 1;
            int db = i <= b.rank() ? b.dim(-i) : 1;
            compatible &= da == db || da == 1 || db == 1;
        }
        if (!compatible) {
            assertThat(r).isNull();
            return;
        }
        assertThat(r).isNotNull();
        assertThat(r.rank()).isEqualTo(rank);
        for (int i = 1; i <= rank; i++) {
            int da = i <= a.rank() ? a.dim(-i) : 1;
            int db = i <= b.rank() ? b.dim(-i) : 1;
            assertThat(r.dim(-i)).isEqualTo(Math.max(da, db));
        }
        assertThat(a.broadcastsTo(r)).isTrue();
        assertThat(b.broadcastsTo(r)).isTrue();
    }

    @Property
    void broadcastIsAssociativeWhereDefined(@ForAll("shapes") Shape a, @ForAll("shapes") Shape b,
            @ForAll("shapes") Shape c) {
        Shape ab = Shape.broadcast(a, b);
        Shape bc = Shape.broadcast(b, c);
        Shape left = ab == null ? null : Shape.broadcast(ab, c);
        Shape right = bc == null ? null : Shape.broadcast(a, bc);
        assertThat(left).isEqualTo(right);
    }

    @Property
    void binaryOpInferenceAgreesWithBroadcast(@ForAll("shapes") Shape a, @ForAll("shapes") Shape b) {
        Shape r = Shape.broadcast(a, b);
        OpGraph.Builder builder = new OpGraph.Builder();
        int x = builder.add(new Op.Input("a", new TensorType(a, DType.F32)));
        int y = builder.add(new Op.Input("b", new TensorType(b, DType.F32)));
        if (r == null) {
            org.assertj.core.api.Assertions.assertThatThrownBy(() -> builder.add(new Op.Binary(Op.BinaryFn.ADD), x, y))
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("add(f32" + a + ", f32" + b + ")")
                    .hasMessageContaining("broadcast");
        } else {
            int z = builder.add(new Op.Binary(Op.BinaryFn.ADD), x, y);
            assertThat(builder.node(z).shape()).isEqualTo(r);
        }
    }
}
