package aether.scheduler.autograd;

import aether.runtime.ir.Shape;
import java.util.List;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Assume;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;

/** Backward through broadcasting sums over exactly the broadcast dimensions, for any compatible pair of shapes. */
class BroadcastGradientProperties {

    @Provide
    Arbitrary<Shape> shapes() {
        return Arbitraries.integers().between(1, 3).array(int[].class).ofMinSize(0).ofMaxSize(3).map(Shape::new);
    }

    @Property(tries = 40)
    void mulAndDivGradientsMatchCentralDifferences(@ForAll("shapes") Shape a, @ForAll("shapes") Shape b) {
        Assume.that(Shape.broadcast(a, b) != null);
        GradCheck.check("mul " + a + " " + b, List.of(a, b), GradCheck.Values.POSITIVE, a.hashCode() * 31L + b
                .hashCode(), (g, x) -> x.get(0).mul(x.get(1)).add(x.get(0).div(x.get(1))));
    }

    @Property(tries = 20)
    void expandGradientMatchesCentralDifferences(@ForAll("shapes") Shape a, @ForAll("shapes") Shape b) {
        Shape target = Shape.broadcast(a, b);
        Assume.that(target != null);
        GradCheck.check("expand " + a + " -> " + target, List.of(a), GradCheck.Values.GAUSSIAN, a.hashCode(),
                (g, x) -> x.get(0).expand(target));
    }
}
