package aether.runtime.protocol;

import aether.runtime.ir.DType;
import aether.runtime.ir.Op;
import com.fasterxml.jackson.annotation.JsonAutoDetect;
import com.fasterxml.jackson.annotation.JsonSubTypes;
import com.fasterxml.jackson.annotation.JsonTypeInfo;
import com.fasterxml.jackson.databind.module.SimpleModule;

/**
 * Lets the IR ({@code aether.runtime.ir}: graphs, ops, types) travel in messages: ops are named by kind, never by
 * class, and {@link DType}'s derived {@code isFloat()}-style methods are not taken for properties. The IR itself stays
 * free of Jackson annotations; runtime-actors' {@code reference.conf} adds this module to Pekko's Jackson serializers.
 */
public final class IrJacksonModule extends SimpleModule {

    public IrJacksonModule() {
        super("aether-ir");
        setMixInAnnotation(Op.class, OpMixIn.class);
        setMixInAnnotation(DType.class, DTypeMixIn.class);
    }

    /** How many op kinds the mix-in names (tests check it equals {@code Op}'s permitted subclasses). */
    public static int namedOpKinds() {
        return OpMixIn.class.getAnnotation(JsonSubTypes.class).value().length;
    }

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

    @JsonAutoDetect(isGetterVisibility = JsonAutoDetect.Visibility.NONE)
    interface DTypeMixIn {}
}
