package aether.runtime.ir;

import static org.assertj.core.api.Assertions.assertThat;

import aether.runtime.protocol.IrJacksonModule;
import aether.runtime.tensor.GgmlType;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The IR is plain data: every op record, node and graph survives a Jackson round trip unchanged, through the same
 * {@link IrJacksonModule} the cluster serializer uses (op kinds by name, never class names).
 */
class IrSerializationTest {


    @Test
    void everyOpKindIsListedHere() {
        assertThat(IrJacksonModule.namedOpKinds()).isEqualTo(Op.class.getPermittedSubclasses().length);
    }

    @Test
    void graphSurvivesAJacksonRoundTrip() throws Exception {
        // DType's isFloat()/isInteger()/isQuantized() are derived, not state: records serialize their components only.
        ObjectMapper mapper = JsonMapper.builder().addModule(new IrJacksonModule()).build();
        OpGraph.Builder b = new OpGraph.Builder();
        int x = b.add(new Op.Input("x", TensorType.of(DType.F32, 1, 4, 2, 64)));
        int w = b.add(new Op.Input("w", new TensorType(Shape.of(128, 64), DType.quantized(GgmlType.Q8_0))));
        int pos = b.add(new Op.Input("pos", TensorType.of(DType.I32, 4)));
        int r = b.add(new Op.Rope(Op.RopeMode.NEOX, 32, 1e6, 0.5), x, pos);
        int p = b.add(new Op.Permute(List.of(0, 2, 1, 3)), r);
        int a = b.add(new Op.Attention(0.125, 3, 50), p, p, p);
        int flat = b.add(new Op.Reshape(Shape.of(4, 128)), b.add(new Op.Permute(List.of(0, 2, 1, 3)), a));
        int y = b.add(new Op.MatMul(true), b.add(new Op.Slice(1, 0, 64), flat), w);
        int s = b.add(new Op.Softmax(1, 30), y, b.add(new Op.Full(0, TensorType.of(DType.F32, 128))));
        int out = b.add(new Op.Reduce(Op.ReduceFn.MAX, 1, false), b.add(new Op.RmsNorm(1e-6), s));
        int cache = b.add(new Op.Input("cache", new TensorType(Shape.of(32, 128), DType.F16)));
        int stored = b.add(new Op.KvStore(), cache, b.add(new Op.Reshape(Shape.of(4, 128)), x), pos);
        int table = b.add(new Op.Input("table", TensorType.of(DType.I32, 4, 2)));
        int paged = b.add(new Op.PagedAttention(2, 0.125, 0, 0, 16), b.add(new Op.Reshape(Shape.of(4, 2, 64)), r),
                stored, stored, pos, table);
        OpGraph graph = b.build(List.of(out, s, paged));

        String json = mapper.writeValueAsString(graph);
        OpGraph back = mapper.readValue(json, OpGraph.class);
        assertThat(back).isEqualTo(graph);
        assertThat(back.dump()).isEqualTo(graph.dump());
        assertThat(json).doesNotContain("aether.runtime");   // names, not class names
    }
}
