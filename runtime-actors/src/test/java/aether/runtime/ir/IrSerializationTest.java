package aether.runtime.ir;

import static org.assertj.core.api.Assertions.assertThat;

import aether.runtime.tensor.GgmlType;
import com.fasterxml.jackson.annotation.JsonSubTypes;
import com.fasterxml.jackson.annotation.JsonTypeInfo;
import com.fasterxml.jackson.databind.MapperFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The IR is plain data: every op record, node and graph survives a Jackson round trip unchanged. The polymorphic type
 * names live in a mix-in here (name-based, never class names), so the cluster serializer can bind them the same way.
 */
class IrSerializationTest {

    @JsonTypeInfo(use = JsonTypeInfo.Id.NAME, property = "kind")
    @JsonSubTypes({
        @JsonSubTypes.Type(value = Op.Input.class, name = "input"),
        @JsonSubTypes.Type(value = Op.Full.class, name = "full"),
        @JsonSubTypes.Type(value = Op.CausalMask.class, name = "causal_mask"),
        @JsonSubTypes.Type(value = Op.Unary.class, name = "unary"),
        @JsonSubTypes.Type(value = Op.Pow.class, name = "pow"),
        @JsonSubTypes.Type(value = Op.Clamp.class, name = "clamp"),
        @JsonSubTypes.Type(value = Op.Scale.class, name = "scale"),
        @JsonSubTypes.Type(value = Op.Binary.class, name = "binary"),
        @JsonSubTypes.Type(value = Op.Cast.class, name = "cast"),
        @JsonSubTypes.Type(value = Op.Reduce.class, name = "reduce"),
        @JsonSubTypes.Type(value = Op.ArgMax.class, name = "argmax"),
        @JsonSubTypes.Type(value = Op.MatMul.class, name = "matmul"),
        @JsonSubTypes.Type(value = Op.Softmax.class, name = "softmax"),
        @JsonSubTypes.Type(value = Op.RmsNorm.class, name = "rms_norm"),
        @JsonSubTypes.Type(value = Op.LayerNorm.class, name = "layer_norm"),
        @JsonSubTypes.Type(value = Op.Rope.class, name = "rope"),
        @JsonSubTypes.Type(value = Op.GetRows.class, name = "get_rows"),
        @JsonSubTypes.Type(value = Op.ScatterAddRows.class, name = "scatter_add_rows"),
        @JsonSubTypes.Type(value = Op.Attention.class, name = "attention"),
        @JsonSubTypes.Type(value = Op.KvStore.class, name = "kv_store"),
        @JsonSubTypes.Type(value = Op.PagedAttention.class, name = "paged_attention"),
        @JsonSubTypes.Type(value = Op.Reshape.class, name = "reshape"),
        @JsonSubTypes.Type(value = Op.Permute.class, name = "permute"),
        @JsonSubTypes.Type(value = Op.Expand.class, name = "expand"),
        @JsonSubTypes.Type(value = Op.Concat.class, name = "concat"),
        @JsonSubTypes.Type(value = Op.Slice.class, name = "slice"),
        @JsonSubTypes.Type(value = Op.Pad.class, name = "pad")
    })
    interface OpMixIn {}

    @Test
    void everyOpKindIsListedHere() {
        assertThat(OpMixIn.class.getAnnotation(JsonSubTypes.class).value()).hasSize(Op.class.getPermittedSubclasses()
                .length);
    }

    @Test
    void graphSurvivesAJacksonRoundTrip() throws Exception {
        // DType's isFloat()/isInteger()/isQuantized() are derived, not state: records serialize their components only.
        ObjectMapper mapper = JsonMapper.builder().disable(MapperFeature.AUTO_DETECT_IS_GETTERS)
                .addMixIn(Op.class, OpMixIn.class).build();
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
